"""The Kubernetes site: an ephemeral stack with one Indexed Job, watched through the API, destroyed always.

No cluster here: the job stack comes from the real job program under the engine
double, and the Kubernetes API is a fake at the site's API boundary
(``JobApi``) that plays an Indexed Job's status over successive polls."""

from __future__ import annotations

import pytest

from pathlib import Path

from squall.errors import Refused, SiteUnreachable, SquallError
from squall.infra import driver, records
from squall.runner import Runner
from squall.sites import kubernetes_api
from squall.sites.executors.kubernetes_job import TASK_SCRIPT
from squall.sites.kinds.kubernetes_site import add_kubernetes_site
from squall.sites.transports.kubernetes_volume import TASK_MOUNT
from squall.sites.kubernetes_api import IndexedJobStatus, parse_indexes, task_states
from squall.spec import load_spec
from tests.infra.conftest import silent

LAB = driver.StackName("lab", "org", "main")


class FakeIndexedJob:
    """Polls see the job queued, then running, then finished: ``failing`` indexes fail, the others succeed."""

    instances: list["FakeIndexedJob"] = []

    def __init__(self, context=None, failing=(), deadline=False):
        self.failing, self.deadline, self.polls = frozenset(failing), deadline, 0
        self.asked: list[tuple[str, str]] = []
        FakeIndexedJob.instances.append(self)

    def job_status(self, namespace, name):
        self.asked.append((namespace, name))
        self.polls += 1
        tasks = 3
        if self.polls == 1:
            return IndexedJobStatus(frozenset(), frozenset(), 0, False)
        if self.polls == 2:
            return IndexedJobStatus(frozenset({0}), frozenset(), 2, False)
        if self.deadline:
            return IndexedJobStatus(frozenset({0}), frozenset(), 0, True)
        done = frozenset(range(tasks)) - self.failing
        return IndexedJobStatus(done, self.failing, 0, False)

    def pod_log(self, namespace, job, index):
        return f"hello from {index}\n".encode()


@pytest.fixture
def k8s(tmp_path, monkeypatch, store, orgs, engine):
    monkeypatch.setattr(driver, "engine_for", lambda home, backend=None: engine)
    orgs.up(LAB, silent)
    add_kubernetes_site(store, "labk8s", str(LAB), context=None)
    FakeIndexedJob.instances.clear()
    runner = Runner(store, store.home)
    yield runner
    runner.close()


def use_api(monkeypatch, **behaviour):
    monkeypatch.setattr(kubernetes_api, "ClusterJobApi", lambda context=None: FakeIndexedJob(context, **behaviour))


def spec(make_spec, **fields):
    return load_spec(make_spec({"name": "k8s", "split": 3, "image": "python:3.12-slim", "runtime": "auto",
                                "command": "echo hello $SQUALL_TASK_INDEX", **fields}))


def test_an_indexed_job_runs_is_watched_collected_and_its_stack_destroyed(k8s, make_spec, monkeypatch, engine,
                                                                          store, tmp_path):
    use_api(monkeypatch)
    plan = k8s.submit(spec(make_spec), "labk8s", tmp_path / "results")
    result = k8s.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    stack = f"lab.job.{plan.job_id}"
    assert [c for c in engine.calls if c[1] == stack] == [("up", stack), ("destroy", stack)]
    assert records.stack(store, stack).state == "destroyed"
    job = engine.applied[stack].of_type("kubernetes:batch/v1:Job")[0].props
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 3)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "sh", "-c", TASK_SCRIPT, "squall-task", "echo hello $SQUALL_TASK_INDEX"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "python:3.12-slim"
    assert job["spec"]["template"]["spec"]["activeDeadlineSeconds"] == plan.walltime
    assert job["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    providers = engine.applied[stack].of_type("pulumi:providers:kubernetes")
    assert [p.props["context"] for p in providers] == ["lab-prod"]  # the cluster the site watches
    assert engine.applied[stack].count("kubernetes:networking.k8s.io/v1:NetworkPolicy") == 1
    launched = next(e.detail for e in store.journal(plan.job_id) if (e.phase, e.event) == ("launch", "end"))
    assert launched["network_isolated"] is False and "names no NetworkPolicy-enforcing CNI" in \
        launched["network_isolation"]
    assert result.job.network_isolated is False
    api = FakeIndexedJob.instances[-1]
    assert set(api.asked) == {("squall-lab", f"lab-main-job-{plan.job_id}")}
    logs = sorted((tmp_path / "results").glob("*/task-*/log.txt"))
    assert [p.read_text() for p in logs] == [f"hello from {i}\n" for i in range(3)]


def test_a_failed_index_fails_the_job_and_the_stack_is_still_destroyed(k8s, make_spec, monkeypatch, engine, tmp_path):
    use_api(monkeypatch, failing={1})
    plan = k8s.submit(spec(make_spec), "labk8s", tmp_path / "results")
    assert k8s.drive(plan.job_id).job.status == "failed"
    assert ("destroy", f"lab.job.{plan.job_id}") in engine.calls


def test_past_the_deadline_the_unfinished_indexes_time_out(k8s, make_spec, monkeypatch, engine, store, tmp_path):
    use_api(monkeypatch, deadline=True)
    plan = k8s.submit(spec(make_spec), "labk8s", tmp_path / "results")
    assert k8s.drive(plan.job_id).job.status in ("timeout", "failed")
    assert [t.status for t in store.tasks(plan.job_id)] == ["succeeded", "timeout", "timeout"]
    assert ("destroy", f"lab.job.{plan.job_id}") in engine.calls


@pytest.mark.parametrize("fields,problem", [({"image": None, "runtime": "none"}, "image:"),
                                            ({"resources": {"gpus": 8}}, "more than a node of pool gpu")])
def test_what_the_site_cannot_run_is_refused_before_anything_exists(k8s, make_spec, monkeypatch, engine, fields,
                                                                    problem, tmp_path):
    def no_credentials(context=None):
        raise SiteUnreachable("no Kubernetes credentials")

    # the spec's own problems come first: no cluster, no credentials needed to say them
    monkeypatch.setattr(kubernetes_api, "ClusterJobApi", no_credentials)
    (tmp_path / "job").mkdir(exist_ok=True)
    (tmp_path / "job" / "a.csv").write_text("1\n")
    with pytest.raises(Refused, match=problem):
        k8s.submit(spec(make_spec, **fields), "labk8s", tmp_path / "results")
    assert [c for c in engine.calls if c[0] == "up" and ".job." in c[1]] == []


def test_index_lists_and_states():
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8} and parse_indexes(None) == frozenset()
    states = task_states(IndexedJobStatus(frozenset({0}), frozenset({2}), 1, False), 4, True)
    assert [s.state for s in states] == ["succeeded", "running", "failed", "running"]
    assert states[0].network_isolated is True
    unenforced = task_states(IndexedJobStatus(frozenset({0}), frozenset(), 0, False), 1, False)
    assert unenforced[0].network_isolated is False  # a NetworkPolicy no CNI enforces isolates nothing
    gone = task_states(IndexedJobStatus(frozenset(), frozenset(), 0, False, exists=False), 1, False)
    assert gone[0].state == "failed" and "gone" in gone[0].error


def test_a_kubernetes_site_needs_a_kubernetes_organisation(store):
    from squall.errors import InvalidInput

    with pytest.raises(InvalidInput, match="a openstack organisation"):
        add_kubernetes_site(store, "wrong", "zephy.org.main", None)


def test_the_sites_context_must_be_the_one_the_stack_file_pins(store):
    from squall.errors import InvalidInput

    with pytest.raises(InvalidInput, match="pins kubernetes:context lab-prod"):
        add_kubernetes_site(store, "other", "lab.org.main", "somewhere-else")
    assert add_kubernetes_site(store, "labk8s2", "lab.org.main", None)["context"] == "lab-prod"
    with pytest.raises(InvalidInput, match="--network-policy-cni"):
        add_kubernetes_site(store, "labk8s3", "lab.org.main", None, "Calico; rm -rf /")


class VolumeCluster(FakeIndexedJob):
    """A fake cluster whose stager pod is a local folder (the job volume): exec runs the command here with
    ``/work`` pointing at it, and resuming the Job runs the real runtime on each task's folder, bound at the
    pod's mount point in a mount namespace of its own (root only), as a pod would see it."""

    def __init__(self, volume, tasks):
        super().__init__()
        self.volume, self.tasks, self.ran, self.execs = volume, tasks, {}, []

    def pod_running(self, namespace, pod):
        return True

    def exec(self, namespace, pod, argv, stdin=None):
        import subprocess

        self.execs.append(argv[2][:20])
        local = [str(self.volume) + a[len("/work"):] if a.startswith("/work") else a for a in argv]
        proc = subprocess.run(local, input=stdin, capture_output=True)
        if proc.returncode:
            raise SquallError(f"exec {argv[0]}: {proc.stderr.decode()[-300:]}")
        return proc.stdout

    def resume(self, namespace, job):
        import subprocess

        from squall.runtime import runtime_path

        Path(TASK_MOUNT).mkdir(exist_ok=True)
        for index in range(self.tasks):
            script = 'mount --bind "$1" "$2" && exec python3 "$3" run "$2"'
            self.ran[index] = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                                              "sh", str(self.volume / f"task-{index}"), TASK_MOUNT,
                                              str(runtime_path())], capture_output=True).returncode

    def job_status(self, namespace, name):
        done = frozenset(i for i, code in self.ran.items() if code == 0)
        return IndexedJobStatus(done, frozenset(self.ran) - done, 0, False)


def test_files_are_staged_into_the_job_volume_and_outputs_collected_verified(k8s, monkeypatch, engine, store,
                                                                           wind_example, tmp_path):
    import yaml

    from tests.integration.conftest import checksums

    document = yaml.safe_load(wind_example.read_text())
    wind_example.write_text(yaml.safe_dump({**document, "image": "python:3.12-slim", "runtime": "auto"}))
    cluster = VolumeCluster(tmp_path / "volume", tasks=4)
    monkeypatch.setattr(kubernetes_api, "ClusterJobApi", lambda context=None: cluster)
    plan = k8s.submit(load_spec(wind_example), "labk8s", tmp_path / "results")
    result = k8s.drive(plan.job_id)
    assert result.job.status == "succeeded", result.job.error
    stack = f"lab.job.{plan.job_id}"
    graph = engine.applied[stack]
    job = graph.of_type("kubernetes:batch/v1:Job")[0].props
    assert job["spec"]["suspend"] is True  # resumed by the site once staged
    assert graph.of_type("kubernetes:core/v1:PersistentVolumeClaim")[0].props["spec"]["storageClassName"] == "nfs-rwx"
    assert cluster.ran == {0: 0, 1: 0, 2: 0, 3: 0}
    outputs = checksums(tmp_path / "results" / plan.job_id)
    assert len([k for k in outputs if k.endswith("summary.csv")]) == 4
    wind_example.write_text(yaml.safe_dump(document))  # the example as it is, on the local site
    local = Runner(store, store.home)
    again = local.submit(load_spec(wind_example), "local", tmp_path / "local")
    assert local.drive(again.job_id).job.status == "succeeded"
    assert checksums(tmp_path / "local" / again.job_id) == outputs  # the same results as the local site


def test_a_damaged_transfer_is_caught(k8s, monkeypatch, wind_example, tmp_path):
    import yaml

    document = yaml.safe_load(wind_example.read_text())
    wind_example.write_text(yaml.safe_dump({**document, "image": "python:3.12-slim", "runtime": "auto"}))
    cluster = VolumeCluster(tmp_path / "volume", tasks=4)
    real_exec = cluster.exec

    def corrupting(namespace, pod, argv, stdin=None):
        out = real_exec(namespace, pod, argv, stdin)
        if "sha256sum" in argv[2]:  # the pod's listing after the unpack: one file's digest is not what was sent
            return out.replace(out[:8], b"00000000", 1)
        return out
    cluster.exec = corrupting
    monkeypatch.setattr(kubernetes_api, "ClusterJobApi", lambda context=None: cluster)
    plan = k8s.submit(load_spec(wind_example), "labk8s", tmp_path / "results")
    result = k8s.drive(plan.job_id)
    assert result.job.status == "failed" and "arrived damaged" in result.job.error
    assert cluster.ran == {}  # nothing ran on damaged inputs


def test_files_without_a_volume_class_are_refused_naming_it(k8s, make_spec, monkeypatch, engine, tmp_path):
    import yaml

    from squall.programs import stack_files

    copy = tmp_path / "stacks"
    copy.mkdir()
    for path in stack_files.stacks_dir().glob("Pulumi.lab.*.yaml"):
        (copy / path.name).write_text(path.read_text().replace(", volume_class: nfs-rwx", ""))
    assert "volume_class" not in yaml.safe_load((copy / "Pulumi.lab.org.main.yaml").read_text())["config"][
        "squall:org"]["job_stack"]
    monkeypatch.setattr(stack_files, "stacks_dir", lambda: copy)
    (tmp_path / "job").mkdir(exist_ok=True)
    (tmp_path / "job" / "a.csv").write_text("1\n")
    with pytest.raises(Refused, match="names no job_stack.volume_class"):
        k8s.submit(spec(make_spec, inputs=["*.csv"]), "labk8s", tmp_path / "results")
    assert [c for c in engine.calls if c[0] == "up" and ".job." in c[1]] == []
