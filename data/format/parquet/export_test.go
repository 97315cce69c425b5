package parquet

// SetMemoryBudget sets memoryBudget and returns what it was, for tests that
// check the bound with small files.
func SetMemoryBudget(n int64) (old int64) {
	old, memoryBudget = memoryBudget, n
	return old
}
