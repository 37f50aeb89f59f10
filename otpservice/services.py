"""Services: the use cases, the lane and the store of one process, wired together once."""

from __future__ import annotations

from otpservice.hashing import CodeHasher
from otpservice.ids import Identifiers
from otpservice.lane import SendLane, consumer_name
from otpservice.loop_lag import LoopLag
from otpservice.providers.base import SmsGateway
from otpservice.sealing import CodeSealer
from otpservice.settings import Settings
from otpservice.store.client import StoreClient
from otpservice.store.connection import RedisClient
from otpservice.store.fraud import RedisFraud
from otpservice.store.idempotency import RedisIdempotency
from otpservice.store.lane_store import RedisLane
from otpservice.store.verifications import RedisVerifications
from otpservice.usecases.checking import CheckCodes
from otpservice.usecases.composing import SmsComposer
from otpservice.usecases.deliveries import RecordDeliveries
from otpservice.usecases.fraud import FraudGuard
from otpservice.usecases.idempotency import IdempotentStarts
from otpservice.usecases.managing import ManageVerifications
from otpservice.usecases.sending import SendCodes


class Services:
    """Everything the routes use, built once per process by the lifespan."""

    def __init__(self, settings: Settings, client: RedisClient, gateway: SmsGateway) -> None:
        retention_ms = settings.retention_seconds * 1000
        ids = Identifiers(settings.pepper)
        consumer = consumer_name()
        self.loop_lag = LoopLag()
        self.store = StoreClient(client, settings.redis_timeout, self.loop_lag)
        verifications = RedisVerifications(self.store, consumer)
        self.hasher = CodeHasher(
            settings.argon2, settings.pepper, settings.hash_threads, settings.hash_queue_seconds
        )
        composer = SmsComposer(
            {t.name: t for t in settings.tenants},
            CodeSealer(settings.pepper),
            f"{settings.public_url}/webhooks/{gateway.name}" if settings.public_url else None,
        )
        self.deliveries = RecordDeliveries(
            verifications, provider=gateway.name, retention_ms=retention_ms
        )
        self.lane = SendLane(
            gateway,
            RedisLane(self.store, consumer, retention_ms),
            self.deliveries,
            composer,
            settings.lane,
        )
        self.fraud_store = RedisFraud(self.store)
        self.fraud = FraudGuard(self.fraud_store, ids)
        self.sending = SendCodes(
            verifications,
            verifications,
            hasher=self.hasher,
            composer=composer,
            queue=self.lane,
            ids=ids,
            guard=self.fraud,
            provider=gateway.name,
            retention_ms=retention_ms,
        )
        self.checking = CheckCodes(verifications, self.hasher, ids, self.fraud)
        self.managing = ManageVerifications(verifications, ids)
        self.idempotent_starts = IdempotentStarts(
            RedisIdempotency(self.store), ttl_ms=settings.idempotency_ttl_seconds * 1000
        )
