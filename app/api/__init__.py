"""The HTTP layer: routes, dependencies and the JSON response class."""
