"""The latency sparkline: points scaled into the box, spikes kept by downsampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nodes.health.sparkline import HEIGHT, PAD, WIDTH, downsample, sparkline

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


def test_downsampling_keeps_each_buckets_spike() -> None:
    minute = timedelta(minutes=1)
    samples = [(START + i * minute, float(i % 7)) for i in range(60)]
    kept = downsample(samples, START, timedelta(minutes=10))
    assert len(kept) == 6
    assert all(latency == 6.0 for _, latency in kept)
