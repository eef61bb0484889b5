"""The ``%bytenite`` verbs' handlers, one small module per family.

Which function runs which verb is declared in the verb table,
:data:`bytenite_nb.notebook.grammar.VERBS`, next to each verb's parser. Every handler takes a
:class:`~bytenite_nb.notebook.commands.context.Context` and returns what the magic returns
(displayed by IPython) or ``None``. Modules are imported when a verb first runs, so
``%load_ext bytenite_nb`` stays cheap.
"""
