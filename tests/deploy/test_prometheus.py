"""deploy/prometheus and deploy/grafana: checked by promtool, and against the services.

Every metric an alert or a panel reads must be one the services define, and the
alerts are run on made-up series.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY, load_yaml, render, run_tool, unknown_metrics

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "caravan.yml"
DASHBOARD = json.loads((DEPLOY / "grafana" / "caravan.json").read_text(encoding="utf-8"))


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def _panel_expressions() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def test_rules_pass_promtool() -> None:
    assert "SUCCESS" in run_tool("promtool", "check", "rules", RULES)


def test_alerts_and_panels_read_only_metrics_the_services_define() -> None:
    assert unknown_metrics([rule["expr"] for rule in _alerts()]) == set()
    assert unknown_metrics(_panel_expressions()) == set()


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # Grafana's interval variable stands in for a range; promtool parses the rest.
    records = [
        {"record": f"caravan:panel_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(_panel_expressions())
    ]
    rules = tmp_path / "panels.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": records}]}))
    assert "SUCCESS" in run_tool("promtool", "check", "rules", rules)


def test_dashboard_panels_have_unique_ids_and_a_datasource() -> None:
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert DASHBOARD["templating"]["list"][0]["name"] == "datasource"
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in DASHBOARD["panels"])


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    # Debian's promtool is built without Kubernetes discovery: check the rest here
    # and the Kubernetes job in the next test.
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    config["scrape_configs"] = [
        job for job in config["scrape_configs"] if "kubernetes_sd_configs" not in job
    ]
    config["rule_files"] = [str(PROMETHEUS / path) for path in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in run_tool("promtool", "check", "config", path)


def test_compose_job_scrapes_every_compose_service() -> None:
    [job] = [
        j
        for j in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
        if j["job_name"] == "compose"
    ]
    compose = load_yaml(DEPLOY.parent / "docker-compose.yml")["services"]
    # By DNS, every replica of a name: the cluster file scales most of them out.
    [lookup] = job["dns_sd_configs"]
    assert (lookup["type"], lookup["port"]) == ("A", 8080)
    assert sorted(lookup["names"]) == ["indexer", "ingest", "query", "ratefeed"]
    assert all(compose[host]["command"] == [host] for host in lookup["names"])


def test_kubernetes_job_follows_the_annotations_the_pods_carry() -> None:
    [job] = [
        j
        for j in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
        if j["job_name"] == "kubernetes-pods"
    ]
    relabels = {tuple(r["source_labels"]): r for r in job["relabel_configs"]}
    pods = [
        o["spec"]["template"]["metadata"]
        for o in render(DEPLOY / "kubernetes" / "base")
        if o["kind"] == "Deployment"
    ]
    annotated = [pod["annotations"] for pod in pods if "annotations" in pod]
    assert annotated
    for pod_annotations in annotated:
        # Prometheus turns each annotation into a label, other characters as `_`.
        meta = {
            "__meta_kubernetes_pod_annotation_" + re.sub(r"\W", "_", key): value
            for key, value in pod_annotations.items()
        }
        keep = relabels[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]
        assert re.fullmatch(keep["regex"], meta[keep["source_labels"][0]])
        path = relabels[("__meta_kubernetes_pod_annotation_prometheus_io_path",)]
        assert re.fullmatch(path["regex"], meta[path["source_labels"][0]])
        address = relabels[("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port")]
        match = re.fullmatch(
            address["regex"],
            f"10.1.2.3:9999;{meta['__meta_kubernetes_pod_annotation_prometheus_io_port']}",
        )
        assert match
        assert address["replacement"].replace("$1", match[1]).replace("$2", match[2]) == (
            "10.1.2.3:8080"
        )


def test_alerts_fire_on_the_series_they_watch(tmp_path: Path) -> None:
    # Without annotations, so the expectations need only the labels.
    groups = load_yaml(RULES)["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    articles = {"stream": "caravan:articles"}

    def alert(name: str, at: str, *firing: dict[str, str]) -> dict[str, Any]:
        return {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [{"exp_labels": labels} for labels in firing],
        }

    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'caravan_stream_lag{stream="caravan:articles",group="indexer"}',
                        "values": "20000x40",
                    },
                    {
                        "series": 'caravan_stream_lag{stream="caravan:articles",group="mine"}',
                        "values": "500x40",
                    },
                    {
                        "series": (
                            'caravan_indexer_documents_total{index="articles",outcome="stored"}'
                        ),
                        "values": "7x40",
                    },
                    {
                        "series": 'caravan_indexer_deadletters_total{stream="caravan:quotes",'
                        'error_class="RateJump"}',
                        "values": "0 0 0 3x37",
                    },
                    {
                        "series": 'caravan_ingest_last_success_timestamp_seconds{source="a"}',
                        "values": "100x80",
                    },
                    {
                        "series": 'caravan_ingest_last_error_timestamp_seconds{source="a"}',
                        "values": "200x80",
                    },
                    {
                        "series": 'caravan_ingest_last_success_timestamp_seconds{source="b"}',
                        "values": "300x80",
                    },
                    {
                        "series": 'caravan_ingest_last_error_timestamp_seconds{source="b"}',
                        "values": "200x80",
                    },
                    {
                        "series": 'caravan_ingest_last_error_timestamp_seconds{source="c"}',
                        "values": "200x80",
                    },
                    # Its lease moved: the replica that lost it keeps its last error.
                    {
                        "series": 'caravan_ingest_last_error_timestamp_seconds{source="d",'
                        'instance="ingest-1"}',
                        "values": "200x80",
                    },
                    {
                        "series": 'caravan_ingest_last_success_timestamp_seconds{source="d",'
                        'instance="ingest-2"}',
                        "values": "300x80",
                    },
                    # A standby reports stale until it takes the provider over.
                    {
                        "series": 'caravan_ratefeed_stale{provider="cbr",instance="ratefeed-1"}',
                        "values": "0x80",
                    },
                    {
                        "series": 'caravan_ratefeed_stale{provider="cbr",instance="ratefeed-2"}',
                        "values": "1x80",
                    },
                    {
                        "series": 'caravan_ratefeed_stale{provider="nbk",instance="ratefeed-1"}',
                        "values": "1x80",
                    },
                    {
                        "series": 'caravan_ratefeed_stale{provider="nbk",instance="ratefeed-2"}',
                        "values": "1x80",
                    },
                    {
                        "series": 'caravan_indexer_holding{instance="indexer-1"}',
                        "values": "0 0 1x10 0x30",
                    },
                    {
                        "series": 'caravan_stream_group_abandoned{stream="caravan:articles",'
                        'group="debug"}',
                        "values": "1x80",
                    },
                    {
                        "series": 'caravan_indexer_match_failures_total{reason="backlog"}',
                        "values": "0 0 0 2x37",
                    },
                    {
                        "series": 'caravan_stream_trimmed_unread_total{stream="caravan:quotes",'
                        'group="indexer"}',
                        "values": "0 0 0 3500x37",
                    },
                    # The compose job names replicas by DNS name, Kubernetes by pod label.
                    {
                        "series": 'up{service="indexer",instance="10.0.0.2:8080"}',
                        "values": "1x19 0x60",
                    },
                    {"series": 'up{service="ingest",instance="10.0.0.3:8080"}', "values": "1x80"},
                    {"series": 'up{service="caravan-ratefeed",pod="r-1"}', "values": "1x80"},
                    {"series": 'up{service="caravan-query",pod="q-1"}', "values": "1x80"},
                ],
                "alert_rule_test": [
                    alert("CaravanConsumerLagHigh", "5m"),
                    alert(
                        "CaravanConsumerLagHigh",
                        "15m",
                        {"severity": "warning", **articles, "group": "indexer"},
                    ),
                    alert("CaravanIndexerStalled", "25m", {"severity": "critical", **articles}),
                    alert(
                        "CaravanDeadLetters",
                        "5m",
                        {
                            "severity": "warning",
                            "stream": "caravan:quotes",
                            "error_class": "RateJump",
                        },
                    ),
                    alert("CaravanIndexerHolding", "4m"),
                    alert(
                        "CaravanIndexerHolding",
                        "9m",
                        {"severity": "critical", "instance": "indexer-1"},
                    ),
                    alert("CaravanIndexerHolding", "20m"),
                    alert("CaravanConsumerGroupAbandoned", "30m"),
                    alert(
                        "CaravanConsumerGroupAbandoned",
                        "70m",
                        {"severity": "info", **articles, "group": "debug"},
                    ),
                    alert("CaravanStreamTrimmedUnread", "2m"),
                    alert(
                        "CaravanStreamTrimmedUnread",
                        "5m",
                        {"severity": "critical", "stream": "caravan:quotes", "group": "indexer"},
                    ),
                    alert("CaravanStreamTrimmedUnread", "30m"),
                    alert("CaravanSavedSearchMatchingFailing", "2m"),
                    alert(
                        "CaravanSavedSearchMatchingFailing",
                        "5m",
                        {"severity": "warning", "reason": "backlog"},
                    ),
                    alert("CaravanSavedSearchMatchingFailing", "30m"),
                    alert("CaravanSourceFailing", "30m"),
                    alert(
                        "CaravanSourceFailing",
                        "70m",
                        {"severity": "warning", "source": "a"},
                        {"severity": "warning", "source": "c"},
                    ),
                    alert("CaravanRatesStale", "70m", {"severity": "warning", "provider": "nbk"}),
                    # No indexer up after 20 minutes, the others up all along.
                    alert("CaravanServiceDown", "10m"),
                    alert(
                        "CaravanServiceDown", "30m", {"severity": "critical", "service": "indexer"}
                    ),
                ],
            }
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in run_tool("promtool", "test", "rules", path)
