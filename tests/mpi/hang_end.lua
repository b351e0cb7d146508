-- tests/mpi/hang_end.lua HANG: rank HANG never reaches the end of the script (an endless
-- loop): the end-of-script wait has a deadline (RECLAB_MPI_END_TIMEOUT), after which the
-- job ends non-zero with a message naming the rank (from rank 0 when another rank hangs).
local hang = tonumber((...)) or 1
print("started")
if reclab.mpi.rank() == hang then
  while true do end
end
print("done")
