"""Monitoring: training curves, production quality, prompt drift, alert rules that can
launch retraining, and Prometheus export."""
