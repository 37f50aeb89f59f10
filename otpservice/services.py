"""Services: the use cases, the lane and the store of one process, wired together once."""

from __future__ import annotations

from collections.abc import Callable

from otpservice.events import EventDispatcher, EventTarget, Render
from otpservice.hashing import CodeHasher
from otpservice.ids import Identifiers
from otpservice.lane import SendLane, consumer_name
from otpservice.loop_lag import LoopLag
from otpservice.providers.base import SmsGateway
from otpservice.sealing import CodeSealer
from otpservice.settings import Settings
from otpservice.store.client import StoreClient
from otpservice.store.connection import RedisClient
from otpservice.store.events import RedisOutbox
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

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        gateway: SmsGateway,
        event_bodies: Callable[[Identifiers], Render] | None = None,
    ) -> None:
        """`event_bodies`: what renders a tenant event's JSON body (api/event_bodies.py; app.py
        passes it, the API's shapes are not this module's to import). Without it, no process
        delivers events (they wait in Redis)."""
        retention_ms = settings.retention_seconds * 1000
        ids = Identifiers(settings.pepper)
        consumer = consumer_name()
        self.ids = ids
        self.loop_lag = LoopLag()
        self.store = StoreClient(client, settings.redis_timeout, self.loop_lag)
        event_tenants = [t.name for t in settings.tenants if t.events_url]
        verifications = RedisVerifications(self.store, consumer, event_tenants)
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
            RedisLane(self.store, consumer, retention_ms, event_tenants),
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
            deliveries=verifications,
        )
        self.checking = CheckCodes(verifications, self.hasher, ids, self.fraud)
        self.managing = ManageVerifications(verifications, ids)
        self.idempotent_starts = IdempotentStarts(
            RedisIdempotency(self.store), ttl_ms=settings.idempotency_ttl_seconds * 1000
        )
        self.events: EventDispatcher | None = None
        if event_bodies is None:
            return
        self.events = EventDispatcher(
            RedisOutbox(
                self.store,
                event_tenants,
                [t.name for t in settings.tenants if t.events_url and t.policy.fraud.mode != "off"],
            ),
            {
                t.name: EventTarget(t.events_url, t.events_secret.reveal().decode())
                for t in settings.tenants
                if t.events_url and t.events_secret
            },
            event_bodies(ids),
            settings.events,
        )
