"""One router module per resource; the app factory includes them."""
