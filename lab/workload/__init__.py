"""The lab's inference workload as pod programs: model server, gateway, load generator, list storm.

Images (see ``lab.runtime.images``): ``lab/model-server`` → ``model_server.ModelServerProgram``,
``lab/gateway`` → ``gateway.GatewayProgram``, ``lab/loadgen`` → ``loadgen.LoadGenProgram``,
``lab/list-storm`` → ``storm.ListStormProgram``.
"""
