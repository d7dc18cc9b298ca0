"""Run a GoodWe SEC1000/SEC1000S smart energy controller from Home Assistant."""

__version__ = "0.4.0"
