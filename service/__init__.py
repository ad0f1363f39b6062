"""The claimsieve web service, its store, its command line."""
