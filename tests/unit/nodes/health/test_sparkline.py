"""The latency sparkline: points scaled into the box (the database reduces the samples to one
point per bucket: tests/integration/nodes/test_health_pages.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nodes.health.sparkline import HEIGHT, PAD, WIDTH, sparkline

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(hours=24)


def test_points_span_the_box_with_the_highest_latency_on_top() -> None:
    spark = sparkline([(START, 10.0), (START + timedelta(hours=12), 40.0), (END, 20.0)], START, END)
    assert spark is not None
    assert (
        spark.points
        == f"{PAD},{HEIGHT - PAD - 5} {WIDTH / 2:g},{PAD} {WIDTH - PAD},{HEIGHT - PAD - 10}"
    )
    assert (spark.last_x, spark.last_y, spark.count, spark.max_ms) == (WIDTH - PAD, 12.0, 3, 40.0)
    assert "3 samples" in spark.label and "40 ms" in spark.label


def test_no_samples_no_sparkline_and_one_sample_still_draws() -> None:
    assert sparkline([], START, END) is None
    one = sparkline([(END, 0.0)], START, END)
    assert one is not None and len(one.points.split()) == 2


def test_the_caption_counts_the_samples_the_points_stand_for() -> None:
    spark = sparkline([(START, 3.0), (END, 9.0)], START, END, samples_count=180)
    assert spark is not None and spark.count == 180 and "180 samples" in spark.label
