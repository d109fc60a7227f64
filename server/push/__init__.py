"""Web Push: VAPID keys, subscriptions, the outbox worker, the daily digest and their API."""
