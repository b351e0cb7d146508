-- tests/mpi/fault.lua: rank 1 stops answering (busy for longer than RECLAB_MPI_TIMEOUT) while
-- rank 0 trains data-parallel: rank 0's gradient exchange times out, its run is marked failed,
-- and the job ends (MPI_Abort) instead of hanging.
if reclab.mpi.rank() == 1 then
  local t = os.time()
  while os.time() - t < 30 do end -- the driver's timeout is far below this
end
reclab.train{"bprmf", data = "demo", name = "bpr", epochs = 1, seed = 1}
