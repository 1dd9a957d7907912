"""Wasserstein distances: closed forms and test cases with known answers, and critics that estimate W1."""
