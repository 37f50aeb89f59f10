"""SMS gateways: the SmsGateway protocol and its implementations. The only httpx users."""
