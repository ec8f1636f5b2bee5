"""The progress line's pace and ETA (pipeline/progress.py): counted from the first outcome, over the
last minute, so that start-up does not make the first ETA of a run twice too long."""
from pipeline.progress import RateMeter, format_line


def feed(meter, until, start, per_second, every=2.0, first_outcome=10.0):
    t = start
    while t <= until:
        meter.add(t, int(max(0.0, t - first_outcome) * per_second))
        t += every


def test_start_up_before_the_first_outcome_does_not_count():
    meter = RateMeter()
    feed(meter, until=30.0, start=0.0, per_second=3.0)  # nothing for 10 s, then 3 paths/s
    assert 2.8 <= meter.rate(30.0, started=0.0) <= 3.2
    done = int(20 * 3.0)
    line = format_line(done, 187, 1, meter.rate(30.0, started=0.0))
    assert line.startswith("progress: 60/187 paths (32%), 1 failed, 3.") and "ETA 0m4" in line
    # Counted since the start instead, the same moment gave 2.0 paths/s and an ETA of 1m03s.


def test_the_pace_follows_the_last_minute():
    meter = RateMeter(window=60.0)
    feed(meter, until=200.0, start=0.0, per_second=1.0, first_outcome=0.0)
    for t in range(202, 302, 2):  # the pace doubles after 200 s
        meter.add(float(t), int(200 + (t - 200) * 2.0))
    assert 1.9 <= meter.rate(300.0, started=0.0) <= 2.1


def test_before_outcomes_span_a_few_seconds_the_average_since_the_start_is_used():
    meter = RateMeter()
    assert meter.rate(10.0, started=0.0) == 0.0
    meter.add(10.0, 5)
    assert meter.rate(10.0, started=0.0) == 0.5
    assert format_line(0, None, 0, 0.0) == "progress: 0 paths, 0 failed, 0.00 paths/s (still listing inputs)"
