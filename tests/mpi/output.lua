-- tests/mpi/output.lua: what the ranks print. Lines every rank prints appear once (rank 0's);
-- a line only rank r > 0 prints appears once, as "[rank r] line", after rank 0's output.
local r = reclab.mpi.rank()
print("common line 1")
if r == 1 then print("only on rank 1") end
print("common line 2")
print("common line 2") -- twice on every rank: twice, not four times
if r == 0 then print("only on rank 0") end
print(("rank-specific %d"):format(r))
print("common line 3")
