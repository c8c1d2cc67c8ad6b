"""Settings: NAME from the environment, or NAME_FILE naming a file that holds it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import get_type_hints

import pytest
import structlog
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from services.query.limits import Places
from services.query.live import QuoteBroadcaster
from shared.clients import make_redis
from shared.settings import (
    LONGEST_BLOCK_MS,
    LONGEST_INTERVAL_SECONDS,
    CommonSettings,
    ElasticsearchSettings,
    IndexerSettings,
    QuerySettings,
    RedisSettings,
    Settings,
    SettingsError,
    has_hash_tag,
    unknown_variables,
)
from tests.conftest import REPO

ENV_EXAMPLE = REPO / ".env.example"
# Variables of .env.example that docker compose reads, not Caravan.
COMPOSE_ONLY = {"CARAVAN_IMAGE", "CARAVAN_ES_HEAP"}

_VARS = (
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_PASSWORD_FILE",
    "ELASTICSEARCH_API_KEY",
    "ELASTICSEARCH_API_KEY_FILE",
    "REDIS_PASSWORD",
    "REDIS_PASSWORD_FILE",
    "CARAVAN_STREAM_PREFIX",
    "CARAVAN_STREAM_PREFIX_FILE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "es-password"
    path.write_text("s3cret\n", encoding="utf-8")
    return path


def test_password_is_read_from_the_file_named_by_file_variable(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret_file))
    settings = ElasticsearchSettings()
    assert settings.password is not None
    assert settings.password.get_secret_value() == "s3cret"  # trailing newline stripped


def test_secret_never_appears_in_repr_str_or_dump(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret_file))
    settings = ElasticsearchSettings()
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)
    assert "s3cret" not in repr(settings.password)
    assert "s3cret" not in settings.model_dump_json()


def test_plain_environment_variable_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD", "from-env")
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret_file))
    settings = ElasticsearchSettings()
    assert settings.password is not None
    assert settings.password.get_secret_value() == "from-env"


def test_without_either_variable_there_is_no_password() -> None:
    assert ElasticsearchSettings().password is None
    assert RedisSettings().password is None


def test_file_convention_uses_each_class_prefix(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret_file))
    assert ElasticsearchSettings().password is None  # another prefix: not read
    redis = RedisSettings().password
    assert redis is not None
    assert redis.get_secret_value() == "s3cret"


def test_file_convention_works_for_plain_fields(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "prefix"
    path.write_text("  run42:\n", encoding="utf-8")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX_FILE", str(path))
    assert CommonSettings().stream_prefix == "run42:"


def test_explicit_argument_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret_file))
    settings = ElasticsearchSettings(password=SecretStr("given"))
    assert settings.password is not None
    assert settings.password.get_secret_value() == "given"


def test_the_bundle_reads_every_group_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("CARAVAN_QUERY_PORT", "9999")
    monkeypatch.setenv("CARAVAN_INDEXER_BATCH_SIZE", "7")
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret_file))
    settings = Settings.from_env()
    # Read now, not when used: a later change of the environment reaches nothing.
    monkeypatch.setenv("CARAVAN_QUERY_PORT", "1")

    assert (settings.query.port, settings.indexer.batch_size) == (9999, 7)
    assert settings.elasticsearch.password == SecretStr("s3cret")


def test_a_followed_key_file_not_there_yet_is_waited_for_not_a_failed_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = tmp_path / "indexer.api-key"
    monkeypatch.setenv("ELASTICSEARCH_API_KEY_FILE", str(later))

    settings = ElasticsearchSettings()

    assert settings.api_key is None
    assert settings.api_key_file == later


def test_any_other_secret_file_missing_is_a_clear_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "nowhere"))

    with pytest.raises(SettingsError, match=r"REDIS_PASSWORD_FILE: no file at .*nowhere"):
        RedisSettings()


@pytest.mark.parametrize(
    "url", ["news.example", "javascript:alert(1)", "https://", "https://news.example/a b"]
)
def test_the_public_url_of_feeds_must_be_an_http_base(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        QuerySettings(public_url=url)


def test_a_public_url_may_have_a_path() -> None:
    assert QuerySettings(public_url="https://news.example/caravan/").public_url == (
        "https://news.example/caravan/"
    )
    assert QuerySettings().public_url is None


@pytest.mark.parametrize("cluster", [False, True])
async def test_a_blocking_read_asks_redis_for_less_than_the_client_waits(cluster: bool) -> None:
    # A read blocked as long as the client waits for a reply races its own timeout:
    # an idle stream then ends it as an error (a warning and a backoff each time).
    redis = make_redis(RedisSettings(url="redis://127.0.0.1:1/0", cluster=cluster))
    waits = redis.get_connection_kwargs()["socket_timeout"]  # type: ignore[no-untyped-call]
    assert waits * 1000 > LONGEST_BLOCK_MS
    assert QuoteBroadcaster(redis, "quotes", Places(1, 1), 60)._block_ms <= LONGEST_BLOCK_MS
    with pytest.raises(ValidationError, match="less than or equal to 4000"):
        IndexerSettings(block_ms=LONGEST_BLOCK_MS + 1)
    await redis.aclose()


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # `# NAME=` lines of .env.example uncommented as they are.
    monkeypatch.setenv("CARAVAN_INDEXER_CONSUMER", "")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", "")
    monkeypatch.setenv("CARAVAN_QUERY_PUBLIC_URL", "")
    assert IndexerSettings().consumer != ""  # every replica one consumer, before
    assert CommonSettings().stream_prefix == "caravan:"
    assert QuerySettings().public_url is None  # a failed start, before


def _settings_classes() -> dict[str, type[BaseSettings]]:
    """Each settings group by its variables' prefix, longest first."""
    groups = [
        group
        for group in get_type_hints(Settings).values()
        if isinstance(group, type) and issubclass(group, BaseSettings)
    ]
    classes = {g.model_config.get("env_prefix", ""): g for g in groups}
    return dict(sorted(classes.items(), key=lambda item: -len(item[0])))


def test_the_defaults_env_example_shows_are_the_defaults() -> None:
    shown = re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.+)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    wrong = []
    for variable, value in shown:
        prefix, group = next(
            (p, g) for p, g in _settings_classes().items() if variable.startswith(p)
        )
        name = variable.removeprefix(prefix).lower()
        if variable in COMPOSE_ONLY:
            continue
        assert name in group.model_fields, f"{variable} is no setting"
        default = group.model_fields[name].get_default(call_default_factory=True)
        if getattr(group(**{name: value}), name) != default:
            wrong.append(f"{variable}={value}, the default is {default!r}")
    assert len(shown) > 50
    assert wrong == []


def test_the_readers_time_zone_is_checked_against_the_tz_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARAVAN_TIME_ZONE", "Asia/Tashkent")
    assert CommonSettings().time_zone == "Asia/Tashkent"
    monkeypatch.setenv("CARAVAN_TIME_ZONE", "Asia/Toshkent")
    with pytest.raises(ValidationError, match="unknown time zone 'Asia/Toshkent'"):
        CommonSettings()
    # Python's tz database knows these, Elasticsearch's Java does not: every faceted
    # search sent with one was refused (review).
    for name in ("EST", "ROC", "Factory", "localtime", "posix/Asia/Tashkent"):
        monkeypatch.setenv("CARAVAN_TIME_ZONE", name)
        with pytest.raises(ValidationError, match="name a region"):
            CommonSettings()
    monkeypatch.setenv("CARAVAN_TIME_ZONE", "Etc/GMT-5")
    assert CommonSettings().time_zone == "Etc/GMT-5"


def _problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    return str(raised.value)


def test_a_settings_error_names_its_variable_and_never_shows_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pydantic's message showed every input of the group: the URL, its password with it.
    problems = _problems(
        monkeypatch,
        REDIS_URL="redis://:Sup3rSecret@redis:6379/0",
        REDIS_PASSWORD_FILE="/nowhere/password",
        ELASTICSEARCH_PASSWORD="es-Pa55word",
        ELASTICSEARCH_REQUEST_TIMEOUT="soon",
    )
    assert "REDIS_PASSWORD_FILE: no file at /nowhere/password" in problems
    assert "ELASTICSEARCH_REQUEST_TIMEOUT: Input should be a valid number" in problems
    assert "Sup3rSecret" not in problems
    assert "es-Pa55word" not in problems


def test_a_secret_file_that_cannot_be_read_is_a_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = _problems(monkeypatch, REDIS_PASSWORD_FILE=str(tmp_path))
    assert problems == f"REDIS_PASSWORD_FILE: cannot read {tmp_path}: Is a directory"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CARAVAN_STREAM_GROUP_ABANDON_HOURS", "inf"),
        ("CARAVAN_INDEXER_MATCH_MEMORY_DAYS", "inf"),
        ("CARAVAN_SHUTDOWN_GRACE", "inf"),
        ("CARAVAN_INGEST_STATE_TTL_DAYS", "inf"),
        ("CARAVAN_QUERY_CACHE_SECONDS", "inf"),
        ("CARAVAN_INDEXER_RETENTION_HOURS", "nan"),
        ("CARAVAN_INGEST_TIMEOUT", "0"),
        ("CARAVAN_RATEFEED_TIMEOUT", "0"),
        ("ELASTICSEARCH_REQUEST_TIMEOUT", "0"),
        ("CARAVAN_INGEST_MAX_BYTES", "10"),
        ("CARAVAN_QUERY_PORT", "70000"),
        ("CARAVAN_RATEFEED_INTERVAL", str(LONGEST_INTERVAL_SECONDS + 1)),
    ],
)
def test_settings_are_bounded(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    # Each was taken, and then crashed a service (OverflowError), never timed out, or
    # bound another port (70000: 4464).
    assert _problems(monkeypatch, **{variable: value}).startswith(f"{variable}: ")


def test_a_redis_cluster_needs_a_hash_tagged_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without one every lease script failed with CROSSSLOT while /readyz stayed green.
    problems = _problems(monkeypatch, REDIS_CLUSTER="true", CARAVAN_STREAM_PREFIX="caravan:")
    assert problems.startswith("CARAVAN_STREAM_PREFIX: with REDIS_CLUSTER=true")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", "{caravan}:")
    assert Settings.from_env().redis.cluster


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [
        ("{caravan}:", True),
        ("x-{a}:", True),
        ("caravan:", False),
        ("{}:", False),
        ("{}a}:", False),
        ("{a:", False),
    ],
)
def test_a_hash_tag_is_a_closed_non_empty_brace(prefix: str, tagged: bool) -> None:
    assert has_hash_tag(prefix) is tagged


def test_the_indexer_group_is_one_ingest_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ingest's backpressure counts CARAVAN_STREAM_GROUPS only: it would never have paused.
    problems = _problems(monkeypatch, CARAVAN_INDEXER_GROUP="search")
    assert problems == "CARAVAN_INDEXER_GROUP: search is not in CARAVAN_STREAM_GROUPS"
    monkeypatch.setenv("CARAVAN_STREAM_GROUPS", "search,analytics")
    assert Settings.from_env().indexer.group == "search"


def test_a_ca_file_needs_a_tls_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # With redis:// the CA was ignored and the password went in clear.
    problems = _problems(
        monkeypatch, REDIS_URL="redis://:pw@redis:6379/0", REDIS_SSL_CA_CERTS="/ca.pem"
    )
    assert problems == "REDIS_SSL_CA_CERTS is set, but REDIS_URL is not rediss:// (TLS)"
    monkeypatch.setenv("REDIS_URL", "rediss://:pw@redis:6379/0")
    assert Settings.from_env().redis.ssl_ca_certs == "/ca.pem"
    monkeypatch.setenv("REDIS_URL", "REDISS://:pw@redis:6379/0")  # as redis-py reads it
    assert Settings.from_env().redis.ssl_ca_certs == "/ca.pem"
    # Cluster seeds written host:port are reached with the first URL's scheme.
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", "{caravan}:")
    monkeypatch.setenv("REDIS_URL", "rediss://:pw@node-a:6379, node-b:6379")
    assert Settings.from_env().redis.ssl_ca_certs == "/ca.pem"
    monkeypatch.setenv("REDIS_URL", "rediss://:pw@node-a:6379,redis://node-b:6379")
    assert _problems(monkeypatch) == (
        "REDIS_SSL_CA_CERTS is set, but REDIS_URL is not rediss:// (TLS)"
    )


def test_unknown_caravan_variables_are_named() -> None:
    environ = {
        "CARAVAN_INDEXR_BATCH_SIZE": "5",
        "CARAVAN_QUERY_TRUSTED_PROXY": "1",
        "CARAVAN_QUERY_TRUSTED_PROXIES": "1",
        "CARAVAN_INGEST_SOURCES_FILE": "/run/sources",
        "CARAVAN_STREAM_PREFX_FILE": "/run/prefix",
        "CARAVAN_LOCAL_DIR": "/tmp/local",
        "CARAVAN_ES_HEAP": "1g",
        "REDIS_CLUSTR": "true",
    }
    assert unknown_variables(environ) == (
        "CARAVAN_INDEXR_BATCH_SIZE",
        "CARAVAN_QUERY_TRUSTED_PROXY",
        "CARAVAN_STREAM_PREFX_FILE",
    )


def test_the_repository_s_own_caravan_variables_are_known() -> None:
    # The scripts', compose's and the tests' variables: none may be reported as a typo.
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    names = {
        name
        for file in files
        if (REPO / file).is_file() and REPO / file != Path(__file__)  # this file's typos
        for name in re.findall(
            r"CARAVAN_[A-Z0-9_]*[A-Z0-9]\b", (REPO / file).read_text("utf-8", "replace")
        )
    }
    assert len(names) > 90
    assert unknown_variables(dict.fromkeys(names, "")) == ()


def test_each_unknown_variable_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARAVAN_INDEXR_BATCH_SIZE", "5")
    monkeypatch.setenv("CARAVAN_QUERY_TRUSTED_PROXY", "1")
    settings = Settings.from_env()
    with structlog.testing.capture_logs() as logs:
        settings.log_unknown()
    assert [(log["event"], log["variable"]) for log in logs] == [
        ("unknown variable, not a setting", "CARAVAN_INDEXR_BATCH_SIZE"),
        ("unknown variable, not a setting", "CARAVAN_QUERY_TRUSTED_PROXY"),
    ]
