"""Tests of app.plane."""
