"""The ByteNite Customer API client.

    >>> from bytenite_nb import Client
    >>> client = Client()                       # key + URL resolved as in api/config.py
    >>> job = client.submit("hello-world-template", source="https://example.com/in.txt",
    ...                     params={"app": {"case": "upper"}})
    >>> job.wait().results()

Every Customer API endpoint has a method here (Python names, snake_case arguments); answers
come back as :class:`~bytenite_nb.api.jobs.Job` and the records in
:mod:`~bytenite_nb.api.models`. Errors are :mod:`~bytenite_nb.api.errors`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bytenite_nb import vocabulary, wire
from bytenite_nb.api import checks
from bytenite_nb.api._http import Transport
from bytenite_nb.api.config import Settings, resolve_settings
from bytenite_nb.api.errors import (
    APIStatusError,
    BadRequestError,
    ByteniteError,
    ByteniteWarning,
    NotFoundError,
    ResultsNotReadyError,
)
from bytenite_nb.api.events import EventStream
from bytenite_nb.api.jobs import Job, has_live, mark_deleted
from bytenite_nb.api.models import (
    DataSourceInfo,
    LogEntry,
    Pagination,
    ResultFile,
    Secret,
    TaskInfo,
    Template,
    flatten_logs,
)
from bytenite_nb.api.pagination import Page, paginate
from bytenite_nb.api.uploads import is_upload_source, open_upload
from bytenite_nb.api.watcher import JobWatcher

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from bytenite_nb.api.dev import DevAPI
    from bytenite_nb.api.outputs import Outputs

__all__ = ["Client", "Filter", "connect", "verify_api_key"]

log = logging.getLogger("bytenite_nb.api")

_C = wire.CUSTOMER_PREFIX
_A = wire.AUTH_PREFIX


def _check_param_sections(params: dict[str, Any]) -> None:
    """Refuse ``params`` keys other than the engine sections, before any request is made."""
    unknown = set(params) - wire.PARAM_SECTIONS
    if unknown:
        raise ValueError(
            f"params take the keys app, partitioner and assembler; got {sorted(unknown)} "
            "(put app parameters under 'app')"
        )


def Filter(field: str, condition: str | wire.FilterCondition, value: Any) -> dict[str, Any]:
    """One ``POST /jobs/filter`` filter: ``Filter("state", "eq", "JOB_STATE_COMPLETE")``.

    ``condition`` is a :class:`~bytenite_nb.wire.FilterCondition` or its (short) name; the
    value is wrapped as the ``google.protobuf.Value`` Any the API expects.
    """
    cond = wire.FilterCondition.parse(condition)
    if isinstance(value, wire._NamedEnum):
        value = value.value
    elif isinstance(value, (list, tuple, set, frozenset)):
        value = [v.value if isinstance(v, wire._NamedEnum) else v for v in value]
    return {
        "field": wire.to_camel(field),
        "condition": cond.value,
        "value": {"@type": wire.PROTOBUF_VALUE_TYPE, "value": value},
    }


def _data_source(source: Any) -> dict[str, Any]:
    """A wire data source from a dict (as is), a URL, or a descriptor name like ``"bypass"``."""
    if isinstance(source, Mapping):
        return wire.camelize_keys(dict(source), opaque=("params",))
    if isinstance(source, str):
        if source.startswith(("http://", "https://")):
            return wire.url_source(source)
        if source in {d.value for d in wire.Descriptor}:
            return {"dataSourceDescriptor": source}
    raise ValueError(
        "data source must be a URL, a descriptor name (bypass, bucket, ...) or a dict, "
        f"got {source!r}"
    )


class Client:
    """A connection to one ByteNite API (ByteNite Local by default).

    ``api_key`` / ``base_url`` default to the environment, the config file, the keyring, or a
    running ByteNite Local (see :mod:`bytenite_nb.api.config`). ``timeout`` is the read timeout
    in seconds for ordinary calls; ``max_retries`` bounds transport retries (429/502/503/504
    and connection errors, with jittered backoff and Retry-After). The key never appears in
    the repr, logs, or exceptions.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or resolve_settings(api_key, base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self._transport = Transport(self.settings, timeout=timeout, max_retries=max_retries)
        self._dev: DevAPI | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def __repr__(self) -> str:
        return f"<Client {self.base_url} api_key=<hidden>>"

    def close(self) -> None:
        """Close the HTTP connection pools."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_options(
        self, *, timeout: float | None = None, max_retries: int | None = None
    ) -> Client:
        """A new client with the same credentials and some options changed."""
        return Client(
            settings=self.settings,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._transport.request(method, path, **kwargs)

    def _job_call(self, method: str, path: str, **kwargs: Any) -> Job:
        return Job.from_response(self, self._call(method, path, **kwargs))

    # -- info and auth ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """``GET /info``: the API version and server messages."""
        return self._call("GET", f"{_C}/info")

    def access_token(self) -> str:
        """A current access token (exchanged from the API key, cached until near expiry)."""
        return self._transport.auth.token()

    # -- secrets (Auth API) -----------------------------------------------------------------

    def secrets(self, secret_type: str | None = None) -> list[Secret]:
        """``GET /v1/auth/secrets``: your secrets (of one ``secret_type``), never their keys."""
        params = {"secretType": secret_type} if secret_type else None
        answer = self._call("GET", f"{_A}/secrets", params=params)
        return [Secret.from_json(r) for r in answer.get("secrets") or () if isinstance(r, dict)]

    def save_secret(
        self,
        secret_type: str,
        access_key: str | None = None,
        *,
        secret_key: str,
        id: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        expires_at: str | dt.datetime | None = None,
    ) -> str:
        """``POST /v1/auth/secrets``: save a secret (the same type and ``id`` again replaces
        it); returns its id.

        ``secret_type``: ``aws`` (``s3``), ``gcp``, ``storj`` (these need ``access_key``) or
        ``other`` (a key alone, e.g. an LLM provider's API key). ``id`` is what apps read it
        by: ``os.environ[id]`` for ``other``, ``<id>_ACCESS_KEY``/``<id>_SECRET_KEY`` for the
        rest, when their manifest lists it in ``platform_config.secrets``; a fresh id is made
        when none is given. ``expires_at``: an aware datetime (naive means UTC) or ISO 8601.
        The secret key is never in a repr, log line or exception raised here.
        """
        if not isinstance(secret_type, str) or not secret_type.strip():
            raise ValueError("secret_type is required: aws, gcp, storj or other")
        if not isinstance(secret_key, str) or not secret_key:
            raise ValueError("secret_key is required: the secret value (an API key, or the "
                             "secret access key that goes with access_key)")
        secret_id = id or wire.new_secret_id()
        secret: dict[str, Any] = {"id": secret_id, "secretType": secret_type.strip()}
        if access_key is not None:
            secret["accessKey"] = access_key
        if name is not None:
            secret["name"] = name
        if params is not None:
            secret["params"] = dict(params)
        if expires_at is not None:
            secret["expiresAt"] = _timestamp(expires_at)
        try:
            # The id is the client's, and saving replaces: repeating the request is harmless.
            self._call("POST", f"{_A}/secrets", json={"secret": secret, "secretKey": secret_key},
                       idempotent=True)
        except ByteniteError as exc:
            _scrub(exc, secret_key)  # a server may quote the request body in its error
            raise
        return secret_id

    def delete_secret(self, secret_type: str, id: str) -> dict[str, Any]:
        """``DELETE /v1/auth/secrets/{secretType}/{id}`` (404 ``NotFoundError`` if missing)."""
        return self._call("DELETE", f"{_A}/secrets/{quote(secret_type, safe='')}/"
                                    f"{quote(id, safe='')}")

    # -- jobs -----------------------------------------------------------------------------

    def create_job(
        self,
        template_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        data_source: Any = None,
        data_destination: Any = None,
        params: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> Job:
        """``POST /jobs``: create a NEW (draft) job from a template.

        The client picks the ``jobId`` (a UUID4 unless given), which makes the request
        idempotent: the transport may safely repeat it after a dropped connection.
        """
        body: dict[str, Any] = {"templateId": template_id, "jobId": job_id or str(uuid.uuid4())}
        if name is not None:
            body["name"] = name
        if description is not None:
            body["description"] = description
        if data_source is not None:
            body["dataSource"] = _data_source(data_source)
        if data_destination is not None:
            body["dataDestination"] = _data_source(data_destination)
        if params is not None:
            body["params"] = params
        if config is not None:
            body["config"] = wire.camelize_keys(config)
        return self._job_call("POST", f"{_C}/jobs", json=body, idempotent=True)

    def job(self, job_id: str) -> Job:
        """``GET /jobs/{id}``: re-attach to any job."""
        return self._job_call("GET", f"{_C}/jobs/{job_id}")

    def jobs(
        self,
        *,
        state: Any = None,
        template_id: str | None = None,
        filters: Iterable[dict[str, Any]] | None = None,
        order_by: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
    ) -> Iterator[Job]:
        """Iterate jobs lazily, one request per ``page_size`` jobs.

        ``state``: a status word (``running``, ``complete``, ``failed``, ``aborted``...), an
        alias (``completed``, ``cancelled``...), a wire name, or several of them (see
        :mod:`bytenite_nb.vocabulary`; an unknown word is a ``ValueError`` with a
        did-you-mean). ``state`` and ``template_id`` become filters; any filter sends
        ``POST /jobs/filter``, otherwise ``GET /jobs``. ``failed`` and ``aborted`` share the
        wire's FAILED, so those are told apart here, job by job. ``filters`` takes
        :func:`Filter` dicts. ``limit`` caps how many jobs are yielded. A ``template_id`` no
        template has, when nothing matched, gives a :class:`ByteniteWarning` with a
        did-you-mean (it may be a typo; jobs of a deleted template still list).
        """
        all_filters = list(filters or ())
        wanted: tuple[str, ...] = ()
        if state is not None:
            wanted = vocabulary.parse_statuses(state)
            names = [s.value for s in vocabulary.wire_states(wanted)]
            if len(names) == 1:
                all_filters.append(Filter("state", wire.FilterCondition.EQ, names[0]))
            else:
                all_filters.append(Filter("state", wire.FilterCondition.IN, names))
        if template_id is not None:
            all_filters.append(Filter("templateId", wire.FilterCondition.EQ, template_id))
        # failed/aborted are one wire state: the server's filter cannot tell them apart.
        refine = len({vocabulary.FAILED, vocabulary.ABORTED} & set(wanted)) == 1

        def fetch(offset: int, size: int) -> Page[Job]:
            if all_filters:
                body: dict[str, Any] = {
                    "pagination": {"limit": size, "offset": offset},
                    "filters": all_filters,
                }
                if order_by:
                    body["orderBy"] = order_by
                # A filter query is a read, so repeating it is safe.
                answer = self._call("POST", f"{_C}/jobs/filter", json=body, idempotent=True)
            else:
                query: dict[str, Any] = {"pagination.limit": size, "pagination.offset": offset}
                if order_by:
                    query["orderBy"] = order_by
                answer = self._call("GET", f"{_C}/jobs", params=query)
            items = [Job(self, raw) for raw in answer.get("data") or ()]
            return Page(items, Pagination.from_json(answer.get("pagination")))

        listing = paginate(fetch, page_size=page_size, limit=None if refine else limit)
        if refine:
            listing = (job for job in listing if job.status in wanted)
            if limit is not None:
                listing = itertools.islice(listing, limit)
        if template_id is None:
            return listing
        return self._warn_unknown_template(listing, template_id)

    def _warn_unknown_template(self, listing: Iterator[Job], template_id: str) -> Iterator[Job]:
        """``listing``, and when it turned out empty, a warning if no template is called
        ``template_id`` (with a did-you-mean)."""
        found = False
        for job in listing:
            found = True
            yield job
        if found:
            return
        try:
            known = [t.id for t in self.templates()]
        except ByteniteError:  # the warning is a courtesy; the listing stands
            return
        if template_id not in known:
            import warnings

            hint = vocabulary.suggest(template_id, known, cutoff=checks.ID_CUTOFF)
            warnings.warn(
                f"no jobs, and no template is called {template_id!r} on {self.base_url}."
                f"{hint or ' `%bytenite templates` lists them.'}",
                ByteniteWarning, stacklevel=3)

    def jobs_df(self, *, page_size: int = 1000, columns: str | Sequence[str] = "default",
                **kwargs: Any) -> pd.DataFrame:
        """:meth:`jobs` as a typed DataFrame indexed by job id (``frames.jobs_df``);
        ``jobs_df(state="aborted")`` keeps the aborted ones. ``columns``: ``"default"`` (the
        ones people read), ``"all"``, or a list of names (see ``frames.jobs_df``)."""
        from bytenite_nb import frames

        return frames.jobs_df(self.jobs(page_size=page_size, **kwargs), columns=columns)

    def set_data_source(
        self, job_id: str, data_source: Any = None, data_destination: Any = None
    ) -> Job:
        """``PATCH /jobs/{id}/datasource``: set the input and/or output of a NEW job.

        Each may be a wire dict, a URL (input), or a descriptor name (``"bypass"``,
        ``"bucket"``). For a ``file`` source the answer carries the upload URL
        (``job.upload_url``).
        """
        body: dict[str, Any] = {}
        if data_source is not None:
            body["dataSource"] = _data_source(data_source)
        if data_destination is not None:
            body["dataDestination"] = _data_source(data_destination)
        if not body:
            raise ValueError("give data_source, data_destination, or both")
        return self._job_call("PATCH", f"{_C}/jobs/{job_id}/datasource", json=body)

    def set_params(self, job_id: str, params: dict[str, Any]) -> Job:
        """``PATCH /jobs/{id}/params``: ``{"app": {}, "partitioner": {}, "assembler": {}}``.

        The server validates them against the template's schema (400/422 on failure).
        """
        _check_param_sections(params)
        return self._job_call("PATCH", f"{_C}/jobs/{job_id}/params", json=params)

    def set_name(self, job_id: str, name: str) -> Job:
        """``PATCH /jobs/{id}/jobname`` (the body is a bare JSON string, as the API wants)."""
        return self._job_call("PATCH", f"{_C}/jobs/{job_id}/jobname", json=name)

    def set_config(self, job_id: str, config: dict[str, Any]) -> Job:
        """``PATCH /jobs/{id}/configs``: ``task_timeout``, ``job_timeout``, ``is_test_job``...

        Keys may be snake_case or camelCase.
        """
        return self._job_call(
            "PATCH", f"{_C}/jobs/{job_id}/configs", json=wire.camelize_keys(config)
        )

    def run_job(self, job_id: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /jobs/{id}/run``: start a NEW job. Not retried after a lost answer. The
        job's live handles, if any, are brought up to date."""
        body = {"config": wire.camelize_keys(config)} if config else {}
        answer = self._call("POST", f"{_C}/jobs/{job_id}/run", json=body, idempotent=False)
        self._update_handles(job_id)
        return answer

    def abort_job(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/{id}/abort``: a running job ends ``aborted`` (FAILED on the wire); a
        never-started one is deleted. The job's live handles, if any, are brought up to
        date."""
        answer = self._call("POST", f"{_C}/jobs/{job_id}/abort", idempotent=False)
        self._update_handles(job_id)
        return answer

    def _update_handles(self, job_id: str) -> None:
        """Re-read a job that was just changed, when a handle of it is alive (the read
        updates them all; a job gone is marked deleted). Nothing is read otherwise."""
        if not has_live(self, job_id):
            return
        try:
            self.job(job_id)
        except NotFoundError:
            mark_deleted(self, job_id)
        except ByteniteError as exc:  # the change itself succeeded: that is what counts
            log.debug("could not re-read job %s after changing it: %s", job_id, exc)

    def delete_job(self, job_id: str) -> dict[str, Any]:
        """``DELETE /jobs/{id}`` (the job's live handles then say ``deleted``)."""
        answer = self._call("DELETE", f"{_C}/jobs/{job_id}")
        mark_deleted(self, job_id)
        return answer

    def upload_completed(self, job_id: str) -> dict[str, Any]:
        """``PATCH /jobs/{id}/uploadcompleted``: the ``file`` input is in place."""
        return self._call("PATCH", f"{_C}/jobs/{job_id}/uploadcompleted")

    def upload(self, job_id: str, source: Any, *, upload_url: str | None = None) -> None:
        """Upload the input of a ``file`` data source: PUT to ``tempUrl``, then mark complete.

        ``source`` is a path, bytes, or a binary file object; files are streamed, never read
        whole. The PUT carries no Authorization header (the URL is pre-signed). If the job
        has no ``file`` source yet, one is set first.
        """
        body, filename, size, close_after = open_upload(source)
        try:
            url = upload_url
            if url is None:
                job = self.job(job_id)
                url = job.upload_url
                if url is None:
                    url = self.set_data_source(job_id, wire.file_source()).upload_url
            if url is None:
                raise ByteniteError(f"job {job_id} has no upload URL (tempUrl) for its file source")
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{_header_filename(filename)}"',
            }
            if size is not None:
                headers["Content-Length"] = str(size)
            # PUT is idempotent, and urllib3 rewinds a file body before a retry.
            self._transport.send(
                "PUT",
                url,
                data=body,
                headers=headers,
                authenticate=False,
                read_timeout=max(self.timeout, 300.0),
            ).close()
        finally:
            if close_after:
                body.close()
        self.upload_completed(job_id)

    def results(self, job_id: str) -> list[ResultFile]:
        """``GET /jobs/{id}/results``: names and temporary links.

        Raises :class:`~bytenite_nb.api.errors.ResultsNotReadyError` (a ``BadRequestError``
        saying to call ``job.wait()``) while the job has not completed.
        """
        try:
            answer = self._call("GET", f"{_C}/jobs/{job_id}/results")
        except BadRequestError as exc:
            try:
                job = self.job(job_id)
            except ByteniteError:
                raise exc from None
            if not job.is_terminal:
                raise ResultsNotReadyError.for_job(job, exc) from None
            raise
        return [ResultFile.from_json(r) for r in answer.get("results") or ()]

    def download_results(
        self, job_id: str, directory: str | Path = ".", *, overwrite: bool = True
    ) -> list[Path]:
        """Download every result file of a job into ``directory``; returns the paths."""
        target = Path(directory).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        paths: list[Path] = []
        for result in self.results(job_id):
            dest = (target / result.name).resolve()
            if root not in dest.parents:
                raise ByteniteError(
                    f"refusing result name {result.name!r}: it points outside {root}"
                )
            if dest.exists() and not overwrite:
                raise FileExistsError(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._download(result.link, dest)
            paths.append(dest)
        return paths

    def read_result(self, result: ResultFile) -> bytes:
        """The content of one result file (from :meth:`results`), in memory."""
        with self._open_link(result.link) as response:
            return b"".join(response.iter_content(chunk_size=1 << 16))

    def outputs(self, job_id: str, *, count_rows: bool = True) -> Outputs:
        """What a COMPLETE job produced: result files, total size, and rows when its
        tables are small enough to count (see :mod:`bytenite_nb.api.outputs`)."""
        from bytenite_nb.api.outputs import outputs_of

        return outputs_of(self, job_id, count_rows=count_rows)

    def _open_link(self, link: str) -> Any:
        # Result links are pre-signed; send no credentials unless the API host itself asks.
        try:
            return self._transport.send("GET", link, authenticate=False, stream=True)
        except APIStatusError as exc:
            if exc.status_code not in (401, 403) or not self._transport.url(link).startswith(
                self.base_url
            ):
                raise
            return self._transport.send("GET", link, stream=True)

    def _download(self, link: str, dest: Path) -> None:
        response = self._open_link(link)
        partial = dest.with_name(dest.name + ".part")
        try:
            with response, partial.open("wb") as fh:
                for block in response.iter_content(chunk_size=1 << 16):
                    fh.write(block)
            os.replace(partial, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    def logs(
        self,
        job_id: str,
        *,
        task_ids: Iterable[str] | None = None,
        levels: Iterable[Any] | None = None,
        services: Iterable[Any] | None = None,
    ) -> list[LogEntry]:
        """``POST /logs``: log lines (optionally of some tasks/levels/services), oldest first."""
        return [
            LogEntry.from_json(r)
            for r in self.log_records(job_id, task_ids=task_ids, levels=levels, services=services)
        ]

    def log_records(
        self,
        job_id: str,
        *,
        task_ids: Iterable[str] | None = None,
        levels: Iterable[Any] | None = None,
        services: Iterable[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`logs`, as flat JSON records (``jobId``, ``service``, ``taskId``, ``log``)."""
        body = {
            "jobId": job_id,
            "taskIds": list(task_ids or ()),
            "levels": [wire.LogLevel.parse(x).value for x in levels or ()],
            "services": [wire.LogService.parse(x).value for x in services or ()],
        }
        answer = self._call("POST", f"{_C}/logs", json=body, idempotent=True)
        return flatten_logs(answer, job_id)

    def tasks(self, job_id: str, *, attempts: bool = False) -> list[TaskInfo]:
        """``GET /jobs/{id}/tasks`` (ByteNite Local extension): per-task state and timings.

        ``attempts=True`` also asks for each task's attempts (``TaskInfo.attempt_history``:
        when each started and ended, and how); a server that does not record them sends
        the tasks alone.
        """
        query = {"attempts": "true"} if attempts else None
        answer = self._call("GET", f"{_C}/jobs/{job_id}/tasks", params=query)
        return [TaskInfo.from_json({**t, "jobId": job_id}) for t in answer.get("tasks") or ()]

    def running_tasks(self, job_ids: Iterable[str]) -> dict[str, int]:
        """``POST /jobs/runningTasks``: how many tasks each job is running now."""
        answer = self._call(
            "POST", f"{_C}/jobs/runningTasks", json={"jobsIds": list(job_ids)}, idempotent=True
        )
        return {k: int(v) for k, v in (answer.get("jobsRunningTasks") or {}).items()}

    def test_data_source(self, data_source: Any, *, list_files: bool = False) -> DataSourceInfo:
        """``POST /datasource/test``: check that the server can read a data source."""
        body = {"dataSource": _data_source(data_source), "listFiles": list_files}
        return DataSourceInfo.from_json(
            self._call("POST", f"{_C}/datasource/test", json=body, idempotent=True)
        )

    # -- templates ------------------------------------------------------------------------

    def templates(
        self, *, order_by: str | None = None, page_size: int = 100, limit: int | None = None
    ) -> Iterator[Template]:
        """``GET /jobs/templates``, lazily page by page."""

        def fetch(offset: int, size: int) -> Page[Template]:
            query: dict[str, Any] = {"pagination.limit": size, "pagination.offset": offset}
            if order_by:
                query["orderBy"] = order_by
            answer = self._call("GET", f"{_C}/jobs/templates", params=query)
            items = [
                Template.from_json(t) for t in answer.get("data") or answer.get("templates") or ()
            ]
            return Page(items, Pagination.from_json(answer.get("pagination")))

        return paginate(fetch, page_size=page_size, limit=limit)

    def template(self, template_id: str, *, engines: bool = True) -> Template:
        """One template by id (``GET /jobs/templates/{id}``, falling back to the listing).

        It describes itself when displayed: engines, params with types, defaults and
        descriptions, an example cell. ``engines=True`` also fetches each engine's record
        (description, version) from the Developer API, where the server offers it.
        """
        found = self._template(template_id)
        if not engines:
            return found
        return dataclasses.replace(found, engines=self._engine_records(found))

    def _engine_records(self, template: Template) -> dict[str, dict[str, Any]]:
        """Each section's engine record; sections the server cannot describe are left out."""
        records: dict[str, dict[str, Any]] = {}
        for section in ("app", "partitioner", "assembler"):
            tag = getattr(template, section)
            if not tag:
                continue
            try:
                records[section] = (self.dev.app(tag) if section == "app"
                                    else self.dev.engine(tag, section))
            except APIStatusError:  # no Developer API here, or no access to it: the ids still show
                continue
        return records

    def _template(self, template_id: str) -> Template:
        try:
            answer = self._call("GET", f"{_C}/jobs/templates/{template_id}")
        except NotFoundError:
            answer = None
        if isinstance(answer, dict):
            raw = answer.get("template") or answer.get("data") or answer
            if isinstance(raw, dict) and raw.get("id"):
                return Template.from_json(raw)
        for template in self.templates():
            if template.id == template_id:
                return template
        raise NotFoundError(
            f"no template {template_id!r}",
            status_code=404,
            method="GET",
            url=f"{_C}/jobs/templates/{template_id}",
        )

    def presets(self, template_id: str) -> list[dict[str, Any]]:
        """``GET /jobs/templates/{id}/presets`` (deprecated by ByteNite in 2025-08; raw JSON)."""
        return list(
            self._call("GET", f"{_C}/jobs/templates/{template_id}/presets").get("presets") or ()
        )

    # -- events ---------------------------------------------------------------------------

    def events(
        self, *, since: str | int | None = None, job_id: str | None = None, **kwargs: Any
    ) -> EventStream:
        """``GET /events`` as an iterator of :class:`~bytenite_nb.api.decoding.Event`.

        Reconnects with backoff and resumes after the last sequence number seen; ``since``
        replays from a sequence number, ``job_id`` keeps one job's events. See
        :class:`~bytenite_nb.api.events.EventStream` for the other options.
        """
        return EventStream(self._transport, since=since, job_id=job_id, **kwargs)

    def watch(
        self, job_id: str, on_update: Callable[..., None] | None = None, **kwargs: Any
    ) -> JobWatcher:
        """Start a :class:`~bytenite_nb.api.watcher.JobWatcher` on a job."""
        return JobWatcher(self, job_id, on_update, **kwargs)

    # -- the one-call path ------------------------------------------------------------------

    def submit(
        self,
        template_id: str,
        *,
        source: Any = None,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        data_destination: Any = None,
        description: str | None = None,
        run: bool = True,
    ) -> Job:
        """Create, configure and (by default) run a job; returns its :class:`Job`.

        ``source``: an ``http(s)://`` URL (url source), a local path, bytes or a binary file
        (file source, uploaded streamed), a wire dict, a descriptor name such as
        ``"bypass"``, or ``None`` for the template's default. Inputs are checked before
        anything is created (:mod:`bytenite_nb.api.checks`: the template exists, a template
        that needs input data gets some, every param is one its section's schema declares;
        ``NotFoundError``/``InputError`` naming the fix); if a later step fails, the draft
        job is deleted again.
        """
        upload: Any = None
        data_source: dict[str, Any] | None = None
        if source is not None:
            if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
                upload = source
            elif isinstance(source, Path) or (
                isinstance(source, str)
                and not source.startswith(("http://", "https://"))
                and source not in {d.value for d in wire.Descriptor}
            ):
                if Path(source).expanduser().is_dir():
                    raise IsADirectoryError(
                        f"source {str(source)!r} is a folder; a job takes one input file "
                        "(zip the folder, or use a partitioner that unpacks archives)"
                    )
                if not is_upload_source(source):
                    raise FileNotFoundError(
                        f"source {str(source)!r} is neither an http(s) URL nor an existing file"
                    )
                upload = source
            else:
                data_source = _data_source(source)
        if upload is not None:
            data_source = wire.file_source()
        destination = _data_source(data_destination) if data_destination is not None else None
        if params is not None:
            _check_param_sections(params)
        template = checks.find_template(self, template_id)
        checks.check_input(template, data_source, uploading=upload is not None)
        if params is not None:
            params = checks.route_params(template, params)

        job = self.create_job(template_id, name=name, description=description)
        try:
            if data_source is not None or destination is not None:
                if destination is None:
                    destination = job.data_destination or wire.bucket_destination()
                job = self.set_data_source(job.id, data_source, destination)
            if params is not None:
                job = self.set_params(job.id, params)
            if config is not None:
                job = self.set_config(job.id, config)
            if upload is not None:
                self.upload(job.id, upload, upload_url=job.upload_url)
            if run:
                self.run_job(job.id)
        except BaseException:
            # Leave nothing half-made behind: the draft never ran, so deleting it is safe.
            with contextlib.suppress(Exception):
                self.delete_job(job.id)
            raise
        return job.refresh()

    # -- developer API --------------------------------------------------------------------

    @property
    def dev(self) -> DevAPI:
        """The Developer API (apps, engines, templates), where the server offers it."""
        if self._dev is None:
            from bytenite_nb.api.dev import DevAPI

            self._dev = DevAPI(self._transport)
        return self._dev


def _timestamp(value: str | dt.datetime) -> str:
    """An ISO 8601 string as given; a datetime in UTC (naive means UTC)."""
    if isinstance(value, dt.datetime):
        return wire.format_timestamp(value) or ""
    return str(value)


def _scrub(exc: BaseException, secret: str) -> None:
    """Replace ``secret`` (and its JSON-escaped form) by ``***`` everywhere in ``exc``."""
    forms = sorted({secret, json.dumps(secret)[1:-1]} - {""}, key=len, reverse=True)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for form in forms:
                value = value.replace(form, "***")
            return value
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(clean(v) for v in value)
        return value

    for attr in ("message", "description", "error_message", "body"):
        if hasattr(exc, attr):
            setattr(exc, attr, clean(getattr(exc, attr)))
    exc.args = tuple(clean(a) for a in exc.args)


def _header_filename(name: str) -> str:
    return "".join(c for c in name if c.isprintable() and c not in '"\\') or "data.bin"


def connect(api_key: str | None = None, base_url: str | None = None, **kwargs: Any) -> Client:
    """``Client(...)`` under a verb: resolve credentials and return a client."""
    return Client(api_key, base_url, **kwargs)


def verify_api_key(api_key: str, base_url: str, *, timeout: float = 10.0) -> bool:
    """Whether the API at ``base_url`` accepts ``api_key``: ``True`` once it exchanged the key
    for a token and listed templates with it, ``False`` when it did not answer.

    Raises :class:`~bytenite_nb.api.errors.AuthenticationError` when it rejected the key
    (other API errors propagate too).
    """
    from bytenite_nb.api.errors import APIConnectionError

    client = Client(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=1)
    try:
        next(iter(client.templates()), None)
    except APIConnectionError:
        return False
    finally:
        client.close()
    return True
