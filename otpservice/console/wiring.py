"""The console's services of one process, built on the service's own (the console's
services.py: the one module of the console that sees the store)."""

from __future__ import annotations

from otpservice.console.passwords import PasswordVerifier
from otpservice.ids import Identifiers
from otpservice.services import Services
from otpservice.settings import Settings
from otpservice.store.console import RedisConsole
from otpservice.store.history import RedisHistory
from otpservice.store.stats import RedisStats
from otpservice.usecases.console_access import ConsoleAccess
from otpservice.usecases.support import SupportDesk


class ConsoleServices:
    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        store = RedisConsole(services.store)
        self.passwords = PasswordVerifier(
            [user.password_hash.reveal().decode() for user in settings.support_users]
        )
        self.access = ConsoleAccess(
            settings.support_users,
            settings.pepper,
            sessions=store,
            limiter=store,
            passwords=self.passwords,
        )
        self.desk = SupportDesk(
            {tenant.name: tenant for tenant in settings.tenants},
            Identifiers(settings.pepper),
            history=RedisHistory(services.store),
            audit=store,
            stats=RedisStats(services.store),
            fraud=services.fraud,
        )

    def close(self) -> None:
        self.passwords.shutdown()
