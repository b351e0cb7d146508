-- tests/mpi/die.lua: rank 1 dies (exits) while rank 0 trains data-parallel: mpirun ends the
-- job with SIGTERM, rank 0's waiting collective fails with "the job is being ended", its run is
-- marked failed and the job ends (no hang).
if reclab.mpi.rank() == 1 then os.exit(3) end
reclab.train{"bprmf", data = "demo", name = "bpr", epochs = 2, seed = 1}
