"""Progress lines: one per run with an estimate of the time left, forwarded whole from kernels."""

import io

from helpers.report.console import ProgressEcho
from helpers.study.progress import PREFIX, RunProgress, duration, time_left


def test_time_left_uses_the_mean_of_each_kind_else_of_all():
    done = [("head", 10.0), ("head", 20.0), ("cbv", 60.0)]
    assert time_left([], ["head"]) is None
    assert time_left(done, ["head", "cbv", "all"]) == 15 + 60 + 30


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (4, 89, 600, 3900)] == ["4 s", "89 s", "10 min", "1 h 05 min"]


def test_each_run_prints_one_line_with_its_number_and_estimate():
    out = io.StringIO()
    progress = RunProgress(["a", "a", "b"], stream=out)
    for label in ("first", "second", "third"):
        progress.start(label)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split()[-1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "time left unknown yet" in lines[0] and "left)" in lines[2]
    assert all(line.startswith(PREFIX) and "\r" not in line for line in lines)


def test_kernel_stderr_is_forwarded_line_by_line_and_only_progress():
    out = io.StringIO()
    echo = ProgressEcho(PREFIX, indent="  ", out=out)
    for chunk in (f"{PREFIX}run 1/2: a\nsome warning\n{PREFIX}ru", "n 2/2: b\n", "tail"):
        echo.write(chunk)
    assert out.getvalue() == "  run 1/2: a\n  run 2/2: b\n"
