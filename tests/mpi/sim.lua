print("RESULT sim.todo 1")
