"""Configuration comes from the environment; production refuses unsafe defaults."""

import pytest

from config import DEFAULT_SECRET_KEY, ConfigError, load_config


def test_production_refuses_the_default_secret(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config("production")


def test_production_needs_a_database_url(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-from-the-vault")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config("production")


def test_production_with_both_set_starts_with_secure_cookies(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-from-the-vault")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    settings = load_config("production")
    assert settings["SECRET_KEY"] == "a-real-secret-from-the-vault"
    assert settings["SESSION_COOKIE_SECURE"] is True


def test_development_uses_the_default_secret_only_when_none_is_set(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert load_config("development")["SECRET_KEY"] == DEFAULT_SECRET_KEY
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert load_config("development")["SECRET_KEY"] == "from-the-environment"


def test_environment_overrides_and_unknown_profiles(monkeypatch):
    monkeypatch.setenv("BASE_URL", "https://licensing.example.police.uk")
    assert load_config("development")["BASE_URL"] == "https://licensing.example.police.uk"
    with pytest.raises(ConfigError, match="LICENSING_ENV"):
        load_config("staging")
