"""The servers textcls is compared with: an HTTP no-op and two one-call-per-request baselines."""
