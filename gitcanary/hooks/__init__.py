"""Webhooks and notifications: the I/O edge around the gates of the pure rollout core.

`webhooks` calls Flagger webhooks, `alerts` sends notifications through AlertProviders, and
`announce` ties both to the reconciler (before deciding, and after each push).
"""
