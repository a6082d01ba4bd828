package authz

import "github.com/dgraph-io/ristretto/v2"

// newEntryCache returns a ristretto cache holding up to maxEntries entries,
// each set with cost 1, with hit and miss counts.
func newEntryCache[K ristretto.Key, V any](maxEntries int64) (*ristretto.Cache[K, V], error) {
	return ristretto.NewCache(&ristretto.Config[K, V]{
		NumCounters: max(10*maxEntries, 1000),
		MaxCost:     max(maxEntries, 1),
		BufferItems: 64,
		// Cost counts entries, not bytes: without this ristretto adds its own
		// per-entry overhead to each cost and keeps a fraction of the entries.
		IgnoreInternalCost: true,
		Metrics:            true,
	})
}
