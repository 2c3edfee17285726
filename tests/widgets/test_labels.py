"""The labelling panel, driven through its handlers (no browser), including kill -9 and resume."""

from __future__ import annotations

import textwrap

import ipywidgets as widgets
import numpy as np

import alfaviz
from alfaviz import schema
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._gallery import flip_targets
from alfaviz.widgets._labels import LabelPanel, teaching_outcome
from tests._processes import kill_9_after


def _panel(run, **kw):
    data = RunData(run, read_only=False)
    state = AppState()
    data.attach(state)
    return state, data, LabelPanel(state, data, **kw)


def test_queue_follows_pending_in_pick_order(human_run):
    _, data, p = _panel(human_run)
    assert "alfaviz-label-panel" in p.widget._dom_classes
    order = data.queried(0).sort_values(schema.ORDER)[schema.SAMPLE_ID].tolist()
    assert p.queue == order
    assert p.current == order[0]
    assert p.batch_size == 8
    assert p.progress_text.value.strip("&nbsp;") == "0 of 8"
    assert isinstance(p.image, widgets.Image)
    assert p.image.value[:4] == b"\x89PNG"
    assert [b.description for b in p.buttons][:3] == ["0", "1", "2"]  # key = class name
    assert "model says" in p.info.value
    assert "flips to" in p.info.value


def test_label_by_button_and_key_skip_and_undo(human_run):
    _, data, p = _panel(human_run)
    a, b, c, d = p.queue[:4]
    initial = int((data.labels() >= 0).sum())
    p.buttons[5].click()  # the button handler
    assert data.labels()[a] == 5
    assert p.current == b
    p.on_key({"type": "keydown", "key": "3"})  # digits: key 3 is the class named "3"
    assert data.labels()[b] == 3
    assert p.current == c
    p.on_key({"key": "s"})
    assert c in human_run.pool.skipped
    assert p.current == d
    assert "3 of 8" in p.progress_text.value
    assert p.progress.value == 3
    # u undoes only the last human action (the skip)
    p.on_key({"key": "u"})
    assert c not in human_run.pool.skipped
    assert data.labels()[b] == 3
    assert p.current == c
    p.on_undo()  # then the label of b
    assert data.labels()[b] == -1
    assert data.labels()[a] == 5
    assert p.queue[:2] == [b, c]
    p.on_undo()
    p.on_undo()  # nothing of this session left: the initial set is never undone
    assert "Nothing" in p.message
    assert int((data.labels() >= 0).sum()) == initial
    # modifier keys and unknown keys do nothing
    p.on_key({"key": "3", "ctrlKey": True})
    p.on_key({"key": "x"})
    assert p.current == a
    assert p.errors.messages == []


def test_the_ipyevents_keydown_reaches_the_handler(human_run):
    _, data, p = _panel(human_run)
    sid = p.current
    p.keys._handle_mouse_msg(None, {"type": "keydown", "key": "0"}, [])  # the class "0"
    assert data.labels()[sid] == 0


def test_enter_confirms_the_highlight_and_arrows_move_it(human_run):
    _, data, p = _panel(human_run)
    sid = p.current
    assert p.on_confirm() is None  # nothing highlighted yet
    assert "highlighted" in p.message
    p.on_key({"key": "ArrowRight"})
    p.on_key({"key": "ArrowRight"})
    assert p.highlighted == 1
    assert p.buttons[1].button_style == "info"
    p.on_key({"key": "Enter"})
    assert data.labels()[sid] == 1


def test_teaching_prefills_the_oracle_and_names_the_outcome(human_run):
    _, data, p = _panel(human_run, teaching=True)
    sid = p.current
    truth = int(human_run.data.labels([sid])[0])
    assert p.highlighted == truth
    assert "oracle" in p.info.value
    s = data.samples(0)
    pseudo = int(s.loc[s[schema.SAMPLE_ID] == sid, schema.PSEUDO_LABEL].iloc[0])
    targets = flip_targets(data.flips(0), [sid])[sid]
    p.on_confirm()
    assert data.labels()[sid] == truth
    assert p.last_outcome == teaching_outcome(truth, pseudo, targets)
    assert "You chose" in p.feedback.value
    assert "agrees with the oracle" in p.feedback.value
    assert teaching_outcome(3, 3, (4,)) == "pseudo_label"
    assert teaching_outcome(4, 3, (4, 5)) == "flip_target"
    assert teaching_outcome(7, 3, (4, 5)) == "neither"
    # a label that is neither is named so
    p.on_class((pseudo + 1) % 10 if (pseudo + 1) % 10 not in targets else (pseudo + 2) % 10)
    nxt = p.current
    assert p.highlighted == int(human_run.data.labels([nxt])[0])  # pre-filled again


def test_the_whole_batch_then_done(human_run):
    _, _data, p = _panel(human_run)
    while p.current is not None:
        p.on_class(int(human_run.data.labels([p.current])[0]))
    assert p.n_done == 8
    assert "8 of 8" in p.progress_text.value
    assert all(b.disabled for b in p.buttons)
    assert "run the next round" in p.info.value
    assert p.on_class(1) is None
    assert human_run.pending.size == 0


def test_read_only_run_is_refused_with_a_message(oracle_run):
    data = RunData(oracle_run)
    assert data.read_only
    actions = len(oracle_run.label_log)
    p = LabelPanel(AppState(), data)
    assert "read-only" in p.notice.value
    assert all(b.disabled for b in (*p.buttons, p.skip_button, p.undo_button))
    assert p.on_class(1) is None
    assert p.on_key({"key": "s"}) is None
    assert p.on_undo() is None
    assert "read-only" in p.message
    assert len(oracle_run.label_log) == actions
    assert p.errors.messages == []


def test_a_new_round_elsewhere_refreshes_the_queue(human_run):
    _state, data, p = _panel(human_run)
    for sid in list(p.queue):
        data.submit_label(sid, int(human_run.data.labels([sid])[0]))
    assert p.current is None  # the data_version bump rebuilt the queue
    human_run.step()
    assert len(p.queue) == 8
    assert p.queue == data.pending.tolist()


_CHILD = textwrap.dedent(
    """
    import sys, time
    import alfaviz
    from alfaviz.widgets import AppState, RunData
    from alfaviz.widgets._labels import LabelPanel

    data = RunData(alfaviz.open_run(sys.argv[1]), read_only=False)
    panel = LabelPanel(AppState(), data)
    for _ in range(int(sys.argv[2])):
        sid = panel.current
        panel.on_key({"key": str(sid % 9)})  # digits: the key names the class
        print(sid, flush=True)  # acknowledged: the label is committed
    time.sleep(60)
    """
)


def test_kill_9_after_acknowledged_labels_then_resume(human_run):
    path = human_run.path
    order = human_run.pending.tolist()
    acked = [int(ln) for ln in kill_9_after(_CHILD, [str(path), "3"], 3)]
    assert acked == order[:3]
    again = alfaviz.open_run(path)
    data = RunData(again, read_only=False)
    for sid in acked:
        assert data.labels()[sid] == sid % 9  # nothing acknowledged was lost
    p = LabelPanel(AppState(), data)
    assert p.current == order[3]  # starts at the next unlabelled sample
    assert p.queue == order[3:]
    assert "3 of 8" in p.progress_text.value
    # and carries on from there
    p.on_class(0)
    assert data.labels()[order[3]] == 0
    assert np.array_equal(again.pending, np.asarray(order[4:]))


def test_keys_follow_digit_class_names_and_positions_otherwise():
    from alfaviz.widgets._labels import class_keys

    assert class_keys([str(i) for i in range(10)]) == tuple(str(i) for i in range(10))
    assert class_keys(["cat", "dog", "owl"]) == ("1", "2", "3")
    assert class_keys([str(i) for i in range(12)]) == ("1", "2", "3", "4", "5", "6", "7", "8",
                                                       "9", "0")  # fmt: skip
