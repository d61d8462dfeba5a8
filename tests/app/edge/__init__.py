"""Tests of app.edge."""
