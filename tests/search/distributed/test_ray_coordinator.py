"""The coordinator without Ray: batches, restarted replicas, restored batches, events."""

from pynas.search.distributed.coordinator import Coordinator


def record(i, reward=0.5):
    return {"index": i, "reward": reward}


def test_batches_cover_the_budget_in_order_with_a_short_last_batch():
    c = Coordinator(children=5, batch_size=2)
    jobs = [c.next_batch_for(r) for r in (0, 1)]
    assert [(j["id"], j["start"], j["n"]) for j in jobs] == [(0, 0, 2), (1, 2, 2)]
    for j in jobs:
        c.batch_done(j["id"], {})
    last = c.next_batch_for(0)
    assert (last["start"], last["n"]) == (4, 1)
    c.batch_done(last["id"], {})
    assert c.next_batch_for(0) is None and c.next_batch_for(1) is None


def test_a_restarted_replica_gets_its_open_batch_back_with_finished_children():
    c = Coordinator(children=8, batch_size=3)
    job = c.next_batch_for(4)
    c.sampled(job["id"], ["a", "b", "c"], [0, 0])
    assert c.child_done(job["id"], record(1, 0.25))
    again = c.next_batch_for(4)  # replica 4 asks again without finishing: it was restarted
    assert again["id"] == job["id"] and again["archs"] == ["a", "b", "c"]
    assert again["results"] == {1: 0.25}
    assert not c.child_done(job["id"], record(1, 0.9))  # a second report is ignored
    for i in (0, 2):
        c.child_done(job["id"], record(i))
    c.batch_done(job["id"], {"replica": 4})
    events = c.drain()
    assert [k for k, _ in events] == ["allocated", "sampled", "child", "child", "child", "pushed"]
    assert events[-1][1]["rewards"] == [0.5, 0.25, 0.5]
    assert c.drain() == []


def test_restored_open_batches_come_first_then_new_ones_and_stop_ends_the_work():
    open_batches = [
        {"id": 5, "start": 10, "n": 2, "archs": ["x", "y"], "results": {10: 0.1}},
        {"id": 6, "start": 12, "n": 2, "archs": None},
    ]
    c = Coordinator(children=20, batch_size=2, next_index=14, next_batch=7,
                    open_batches=open_batches)  # fmt: skip
    first, second, third = (c.next_batch_for(r) for r in (0, 1, 2))
    assert (first["id"], first["results"], first["archs"]) == (5, {10: 0.1}, ["x", "y"])
    assert (second["id"], second["archs"]) == (6, None)
    assert (third["id"], third["start"]) == (7, 14)
    c.stop()
    c.batch_done(5, {})
    assert c.next_batch_for(0) is None  # no new batches after stop
    assert c.next_batch_for(1)["id"] == 6  # but a held batch is still finished
    assert c.open_batches() == [6, 7]


def test_worker_deaths_count_across_replica_restarts_and_restores():
    c = Coordinator(children=4, batch_size=2)
    job = c.next_batch_for(0)
    c.child_died(job["id"], 1)
    assert c.next_batch_for(0)["deaths"] == {1: 1}  # the restarted replica keeps the count
    c.child_died(job["id"], 1)
    assert [k for k, _ in c.drain()] == ["allocated", "died", "died"]
    restored = Coordinator(
        children=4, batch_size=2, next_index=2, next_batch=1,
        open_batches=[{"id": 0, "start": 0, "n": 2, "archs": None, "deaths": {1: 2}}],
    )  # fmt: skip
    assert restored.next_batch_for(3)["deaths"] == {1: 2}
    none = Coordinator(4, 2, 2, 1, [{"id": 0, "start": 0, "n": 2, "archs": None, "deaths": None}])
    assert none.next_batch_for(0)["deaths"] == {}
