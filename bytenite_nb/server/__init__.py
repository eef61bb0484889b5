"""ByteNite Local: the ByteNite Customer API served and executed on this machine.

``create_app(ServerConfig(...))`` (in ``http/app.py``) builds the FastAPI app;
`bytenite_nb.local.LocalServer` starts one in the background; ``bytenite-nb serve`` runs one in
the foreground. Imports point down the tree: ``http`` → ``service`` → ``storage`` /
``execution``; execution imports neither HTTP nor storage, storage no HTTP (a test walks every
module's imports to keep it so)::

    server/
      config.py        ServerConfig: every setting, from CLI flags, env vars or tests
      context.py       ServerContext: builds and holds one server's parts (composition root)
      errors.py        why a request is refused (InvalidRequest, NotFound ...), for every layer
      http/            the API surface
        app.py           create_app: middleware, error handlers, routers mounted by prefix
        deps.py          Annotated dependencies: context, job service, job, token, pagination
        routes/          one router per resource: jobs, job_list, templates, results, logs,
                         events, datasource, info, deprecated, auth, secrets, files (/local),
                         dev_apps, dev_engines, dev_templates, dev_cache (/v1/dev)
        models.py, dev_models.py   request bodies and documented response shapes
        protojson.py, responses.py, dev_render.py   stored records -> response bodies
        errors.py        ByteNite's error body; the status of each refusal
        middleware.py, idle.py     request ids; activity for the idle timeout
      service/         the rules
        jobs.py          JobService: create, change, run, abort, delete a job
        templates.py     a job's template defaults; data source checks
        runner.py        the job state machine: one thread per run, results stored
        broker.py        the events stream; auth.py: API keys and tokens
        developer.py     which app or engine a Developer API tag names
      storage/         what is kept
        store.py, schema.py, records.py   SQLite: tables, the typed StoredJob and rows
        listing/         job filters and orderings (query), in SQL (sql, index, render)
        dev_store.py     apps, engines and templates pushed through the Developer API
        user_cache.py    USER_CACHE_DIR's files
      execution/       running apps
        pipeline.py      partitioner -> tasks in parallel -> assembler, for one job
        chunks.py, datasources.py, secrets.py   the files, sources and secrets of a run
        registry.py, params_schema.py           apps, engines, templates; params checks
        executors/       where processes run: base, forkserver (+ zygote), subprocess,
                         dask (+ dask_remote), setup
      builtin_apps/    the app folders every server has (hello-world, rows, ...)

More in ``docs/internals.md`` and ``docs/local-server.md``.
"""
