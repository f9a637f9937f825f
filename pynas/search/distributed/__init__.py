"""REINFORCE on Ray with parameter servers (SPEC §6): the driver (:mod:`.search`), the
parameter-server shards (:mod:`.server`), the coordinator (:mod:`.coordinator`) and the
controller replicas (:mod:`.replica`). Children run through :mod:`pynas.executors`' Ray tasks.
"""
