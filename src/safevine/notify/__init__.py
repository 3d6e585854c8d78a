"""Notifications: contact encryption, message rendering, channels and the dispatcher."""
