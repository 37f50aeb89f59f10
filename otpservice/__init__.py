"""otpservice: one-time-password verification over the SMS priority lane."""

__version__ = "0.1.0"
