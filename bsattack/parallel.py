"""Where a run's chunks are computed: in this process (the default) or on Ray actors.

A :class:`Job` is one chunk of work on one restored network, ``fn(model, payload)`` returning a
dict of arrays, with ``fn`` a module-level function (it travels by name).  The driver hands a
list of jobs to an executor and receives each result through ``on_done(index, result,
seconds)`` as soon as it is ready; only the driver writes caches and outputs.  Jobs may come
from a generator, so their payloads are made only when a worker is free for them.

:class:`LocalExecutor` runs the jobs in order, one restored network per (data set,
checkpoint).  :class:`RayExecutor` keeps one Ray actor per worker; an actor restores a
checkpoint once (its files are sent by the driver, so workers need no shared file system) and
then takes chunks.  Actors are restarted by Ray when their process dies and the chunk they
held is retried (``max_restarts``/``max_task_retries``), so a killed worker changes nothing
but the wall time.  Every random draw of an attack is keyed by the image's test index, so
which worker computes a chunk does not change its result.  Workers keep TensorFlow's default
thread count (the node's cores), as a local run does: the network's float results depend on
the number of threads, so one-thread workers would move a few PGD steps by a rounding error.
"""
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from bsattack.errors import BsattackError
from madry_models import checkpoint as ckpt


@dataclass
class Job:
    dataset: str             # the data set's name, not its DatasetSpec: a job is plain data
                             # that crosses to another process (Ray pickles it), so the
                             # worker resolves the name (Models.get)
    checkpoint: str          # a resolved checkpoint path on the driver
    fn: Callable             # fn(model, payload) -> dict of arrays
    payload: dict
    precision: str = "fp32"  # the model's oracle precision (bsattack.precision)


class Models:
    """Restored networks (:class:`bsattack.attacks.model.Model`), one per (data set,
    checkpoint), built on first use and closed together."""

    def __init__(self):
        self._models = {}

    def get(self, dataset, checkpoint, precision="fp32"):
        """The network of the data set named ``dataset`` (a :class:`Job`'s name: this is the
        worker's side of the process boundary, where the name becomes its spec again)."""
        key = (dataset, checkpoint, precision)
        if key not in self._models:
            from bsattack.attacks.model import Model
            from bsattack.datasets import get_spec
            self._models[key] = Model(get_spec(dataset), checkpoint, precision)
        return self._models[key]

    def close(self):
        for model in self._models.values():
            model.close()
        self._models.clear()


class _Executor:
    """A context manager that closes the executor."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalExecutor(_Executor):
    """Every job in this process, in order."""

    def __init__(self):
        self.models = Models()

    def run(self, jobs, on_done):
        """Each of ``jobs`` (any iterable) in turn."""
        for index, job in enumerate(jobs):
            began = time.perf_counter()
            result = self.call(job)
            on_done(index, result, time.perf_counter() - began)

    def call(self, job):
        """One job's result, now."""
        return job.fn(self.models.get(job.dataset, job.checkpoint, job.precision), job.payload)

    def close(self):
        self.models.close()


WORKER_PREFIX = "bsattack-worker-"   # a worker's folder of checkpoint copies, in the temp dir
WORKER_LOCK = ".lock"                 # held (flock) by the worker for its lifetime
UNLOCKED_GRACE = 3600.0               # seconds a folder without a lock file is left alone


def hold_worker_folder(folder):
    """An open handle holding an exclusive flock on ``folder``'s lock file, for as long as the
    handle stays open (the process's life: the kernel drops it when the process dies)."""
    import fcntl
    handle = open(os.path.join(folder, WORKER_LOCK), "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def sweep_worker_folders(root=None):
    """Remove the worker folders in ``root`` (default: the temp dir) whose worker is gone: its
    lock file can be locked (a killed worker's lock died with it).  A folder whose lock is
    held belongs to a live worker; one without a lock file is left for an hour (a worker
    between creating it and locking it).  Returns the folders removed."""
    import fcntl
    import shutil
    root = root or tempfile.gettempdir()
    removed = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not name.startswith(WORKER_PREFIX) or not os.path.isdir(folder) \
                or os.path.islink(folder):
            continue
        lock = os.path.join(folder, WORKER_LOCK)
        try:
            if not os.path.exists(lock):
                if time.time() - os.path.getmtime(folder) > UNLOCKED_GRACE:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
                continue
            with open(lock, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:                 # locked by a live worker, or gone meanwhile
            continue
    return removed


class Worker:
    """The state of one Ray actor: restored networks keyed by (data set, checkpoint hash),
    restored from files the driver sent into a temporary folder of its own, locked while it
    lives; the folders of workers that died (kill -9) are removed as the next worker starts
    (:func:`sweep_worker_folders`)."""

    def __init__(self):
        from bsattack.startup import start_tensorflow
        start_tensorflow()
        self.models = Models()
        sweep_worker_folders()
        self.folder = tempfile.mkdtemp(prefix=WORKER_PREFIX)
        self._lock = hold_worker_folder(self.folder)

    def pid(self):
        return os.getpid()

    def cleanup(self):
        """Close the networks and remove the checkpoint copies this worker received."""
        import shutil
        self.models.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._lock.close()

    def run(self, dataset, digest, files, fn, payload, precision="fp32"):
        began = time.perf_counter()
        prefix = os.path.join(self.folder, digest[:16], "model")
        if not os.path.exists(prefix + ".index"):
            import ray
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            for suffix, content in ray.get(files[0]).items():
                with open(prefix + suffix, "wb") as handle:
                    handle.write(content)
        model = self.models.get(dataset, prefix, precision)
        return fn(model, payload), time.perf_counter() - began, os.getpid()


def checkpoint_files(path):
    """{suffix: bytes} of the checkpoint's index and data files (what its content hash
    covers), to be written next to another prefix."""
    prefix = ckpt.resolve_prefix(path)
    folder, base = os.path.split(prefix)
    files = {}
    for name in sorted(os.listdir(folder or ".")):
        if name == base + ".index" or name.startswith(base + ".data-"):
            with open(os.path.join(folder, name), "rb") as handle:
                files[name[len(base):]] = handle.read()
    return files


CONNECT_TIMEOUT = 5.0     # seconds to wait for a Ray head's port, then for its gRPC reply
# a method of Ray's GCS: any gRPC reply to it (even "unauthenticated" or "unimplemented", as
# from a Ray Client server) shows a gRPC server listens; silence or a non-HTTP/2 answer does not
GCS_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def check_reachable(address, timeout=CONNECT_TIMEOUT):
    """One line (a BsattackError) when nothing answers at ``address`` (HOST:PORT, optionally
    ray://HOST:PORT) within ``timeout`` seconds, or when what answers is no gRPC server (Ray's
    head speaks gRPC), instead of Ray's own minutes of retries."""
    import socket
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        if address == "auto":
            return
        raise BsattackError(f"--ray-address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise BsattackError(f"cannot reach the Ray cluster at {address} ({reason}, waited at "
                            f"most {timeout:g} s)") from None
    try:
        import grpc
    except ImportError:
        return                          # no Ray either: RayExecutor says what to install
    channel = grpc.insecure_channel(target)
    try:
        channel.unary_unary(GCS_METHOD)(b"", timeout=timeout)
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            silent = error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            raise BsattackError(
                f"{address} answers but is no Ray cluster (no gRPC reply: "
                f"{f'silent for {timeout:g} s' if silent else 'not HTTP/2'}); give the Ray "
                f"head's address (e.g. HOST:6379 after 'ray start --head')") from None
    finally:
        channel.close()


class RayExecutor(_Executor):
    """``workers`` Ray actors on a local Ray (``address`` None) or on the cluster at
    ``address`` (then ``workers`` defaults to its CPU count)."""

    def __init__(self, workers=None, address=None):
        if address is None and workers is not None and workers > (os.cpu_count() or 1):
            raise BsattackError(f"--workers {workers} is more than this machine's "
                                f"{os.cpu_count()} CPUs (each worker takes one)")
        if address:
            check_reachable(address)
        try:
            import ray
        except ImportError:
            raise BsattackError("--workers/--ray-address need Ray: pip install '.[ray]' "
                                "(or pip install -r requirements-ray.txt)") from None
        self.ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")   # GPUs stay visible
            # no metrics agent runs without the dashboard: do not try to export to it
            os.environ.setdefault("RAY_enable_metrics_collection", "0")
            import bsattack
            import madry_models
            env = {"py_modules": [os.path.dirname(bsattack.__file__),
                                  os.path.dirname(madry_models.__file__)],
                   "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}
            options = dict(include_dashboard=False, log_to_driver=False, runtime_env=env,
                           configure_logging=False)
            try:
                if address:
                    ray.init(address=address, **options)
                else:
                    ray.init(num_cpus=workers or os.cpu_count(), **options)
            except Exception as error:      # Ray raises a bare Exception when a node times out
                ray.shutdown()                 # stop whatever part of the local Ray did start
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                lines = str(error).strip().splitlines()
                reason = lines[0] if lines else type(error).__name__
                raise BsattackError(f"cannot start or join {where}: {reason}") from None
        offered = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if workers is not None and workers > offered:
            if self._owns_ray:
                ray.shutdown()
            raise BsattackError(f"--workers {workers} is more than the {offered} CPUs the Ray "
                                f"cluster offers (each worker takes one)")
        self.workers = workers or offered
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(Worker)
        self.actors = [remote.remote() for _ in range(self.workers)]
        self._files = {}
        self.chunks_by_pid = Counter()     # jobs done per worker process

    def _wire(self, job):
        if job.checkpoint not in self._files:
            self._files[job.checkpoint] = (ckpt.content_hash(job.checkpoint),
                                           self.ray.put(checkpoint_files(job.checkpoint)))
        digest, ref = self._files[job.checkpoint]
        return job.dataset, digest, [ref], job.fn, job.payload, job.precision

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, BsattackError):
                raise BsattackError(str(cause)) from None
            raise

    def run(self, jobs, on_done):
        """Hand out ``jobs`` (any iterable, drawn as workers come free) to the actors."""
        queue, idle, pending = enumerate(jobs), list(self.actors), {}
        while True:
            while idle:
                index, job = next(queue, (None, None))
                if job is None:
                    break
                actor = idle.pop()
                pending[actor.run.remote(*self._wire(job))] = (index, actor)
            if not pending:
                return
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index, actor = pending.pop(ref)
                result, seconds, pid = self._get(ref)
                self.chunks_by_pid[pid] += 1
                idle.append(actor)
                on_done(index, result, seconds)

    def call(self, job):
        return self._get(self.actors[0].run.remote(*self._wire(job)))[0]

    def worker_pids(self):
        """The process ids of the actors now (an idle actor answers at once)."""
        return self.ray.get([actor.pid.remote() for actor in self.actors])

    def close(self):
        """Remove the actors' checkpoint copies, stop the actors, and the local Ray when this
        executor started it."""
        try:
            self.ray.get([actor.cleanup.remote() for actor in self.actors], timeout=30)
        except Exception:      # a dead or hung actor keeps its copy; stopping it matters more
            pass
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            self.ray.shutdown()


def make_executor(workers=None, address=None):
    """The executor the options ask for: local without ``workers``/``address``."""
    if workers is None and address is None:
        return LocalExecutor()
    if workers is not None and workers < 1:
        raise BsattackError(f"--workers must be at least 1 (got {workers})")
    return RayExecutor(workers, address)
