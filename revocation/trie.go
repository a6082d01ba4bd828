package revocation

import "math/bits"

// trie is a persistent hash array mapped trie (Bagwell's HAMT) from keys to
// entries: a change copies only the nodes on one path from the root (at most
// thirteen, in practice three or four), so a Set of any size takes a new
// entry in O(1) work while every reader keeps the version it loaded. Lookups
// allocate nothing.
//
// Keys are found by a 64-bit hash, five bits a level; two keys whose whole
// hashes agree share a collision node at the bottom, searched in order.
type trie[K comparable] struct {
	root *trieNode[K]
}

type trieNode[K comparable] struct {
	// bitmap has a bit for each of the 32 slots that is occupied; slots
	// holds only those, in bit order.
	bitmap uint32
	slots  []trieSlot[K]
}

// trieSlot is a subtree (child set) or one entry.
type trieSlot[K comparable] struct {
	child *trieNode[K]
	hash  uint64
	key   K
	// entry is shared by every version of the trie that holds it: a copied
	// node copies a pointer, not the entry.
	entry *Entry
}

const (
	trieBits = 5
	// trieCollision is the shift at which the hash is used up: a node there
	// holds entries with equal hashes, unordered.
	trieCollision = 65
)

func slotBit(hash uint64, shift uint) uint32 { return 1 << ((hash >> shift) & 31) }

func (n *trieNode[K]) index(bit uint32) int { return bits.OnesCount32(n.bitmap & (bit - 1)) }

// get returns the entry of key.
func (t trie[K]) get(hash uint64, key K) (*Entry, bool) {
	n := t.root
	for shift := uint(0); n != nil; shift += trieBits {
		if shift >= trieCollision {
			for i := range n.slots {
				if n.slots[i].key == key {
					return n.slots[i].entry, true
				}
			}
			return nil, false
		}
		bit := slotBit(hash, shift)
		if n.bitmap&bit == 0 {
			return nil, false
		}
		s := &n.slots[n.index(bit)]
		if s.child == nil {
			if s.hash == hash && s.key == key {
				return s.entry, true
			}
			return nil, false
		}
		n = s.child
	}
	return nil, false
}

// put returns the trie with key's entry set to e, and whether key is new.
func (t trie[K]) put(hash uint64, key K, e Entry) (trie[K], bool) {
	root, added := t.root.put(0, trieSlot[K]{hash: hash, key: key, entry: &e})
	return trie[K]{root: root}, added
}

func (n *trieNode[K]) put(shift uint, s trieSlot[K]) (*trieNode[K], bool) {
	if shift >= trieCollision {
		c := n.clone(1)
		for i := range c.slots {
			if c.slots[i].key == s.key {
				c.slots[i] = s
				return c, false
			}
		}
		c.slots = append(c.slots, s)
		return c, true
	}
	bit := slotBit(s.hash, shift)
	if n == nil {
		return &trieNode[K]{bitmap: bit, slots: []trieSlot[K]{s}}, true
	}
	i := n.index(bit)
	if n.bitmap&bit == 0 {
		c := &trieNode[K]{bitmap: n.bitmap | bit, slots: make([]trieSlot[K], 0, len(n.slots)+1)}
		c.slots = append(append(append(c.slots, n.slots[:i]...), s), n.slots[i:]...)
		return c, true
	}
	old := n.slots[i]
	c := n.clone(0)
	switch {
	case old.child != nil:
		child, added := old.child.put(shift+trieBits, s)
		c.slots[i] = trieSlot[K]{child: child}
		return c, added
	case old.hash == s.hash && old.key == s.key:
		c.slots[i] = s
		return c, false
	default:
		// Two keys in one slot: push both a level down.
		child, _ := (*trieNode[K])(nil).put(shift+trieBits, old)
		child, _ = child.put(shift+trieBits, s)
		c.slots[i] = trieSlot[K]{child: child}
		return c, true
	}
}

// remove returns the trie without key, and whether it held key.
func (t trie[K]) remove(hash uint64, key K) (trie[K], bool) {
	root, removed := t.root.remove(0, hash, key)
	return trie[K]{root: root}, removed
}

func (n *trieNode[K]) remove(shift uint, hash uint64, key K) (*trieNode[K], bool) {
	if n == nil {
		return nil, false
	}
	if shift >= trieCollision {
		for i := range n.slots {
			if n.slots[i].key == key {
				return n.without(i, 0), true
			}
		}
		return n, false
	}
	bit := slotBit(hash, shift)
	if n.bitmap&bit == 0 {
		return n, false
	}
	i := n.index(bit)
	s := n.slots[i]
	if s.child == nil {
		if s.hash != hash || s.key != key {
			return n, false
		}
		return n.without(i, bit), true
	}
	child, removed := s.child.remove(shift+trieBits, hash, key)
	if !removed {
		return n, false
	}
	if child == nil {
		return n.without(i, bit), true
	}
	c := n.clone(0)
	if len(child.slots) == 1 && child.slots[0].child == nil {
		// A lone entry moves back up, where its hash still finds it.
		c.slots[i] = child.slots[0]
	} else {
		c.slots[i] = trieSlot[K]{child: child}
	}
	return c, true
}

// without returns n less slot i (and bit); nil when nothing is left.
func (n *trieNode[K]) without(i int, bit uint32) *trieNode[K] {
	if len(n.slots) == 1 {
		return nil
	}
	c := &trieNode[K]{bitmap: n.bitmap &^ bit, slots: make([]trieSlot[K], 0, len(n.slots)-1)}
	c.slots = append(append(c.slots, n.slots[:i]...), n.slots[i+1:]...)
	return c
}

func (n *trieNode[K]) clone(extra int) *trieNode[K] {
	if n == nil {
		return &trieNode[K]{slots: make([]trieSlot[K], 0, extra)}
	}
	c := &trieNode[K]{bitmap: n.bitmap, slots: make([]trieSlot[K], len(n.slots), len(n.slots)+extra)}
	copy(c.slots, n.slots)
	return c
}

// each calls fn for every entry until fn returns false.
func (t trie[K]) each(fn func(hash uint64, key K, e *Entry) bool) bool {
	return t.root.each(fn)
}

func (n *trieNode[K]) each(fn func(hash uint64, key K, e *Entry) bool) bool {
	if n == nil {
		return true
	}
	for i := range n.slots {
		s := &n.slots[i]
		if s.child != nil {
			if !s.child.each(fn) {
				return false
			}
		} else if !fn(s.hash, s.key, s.entry) {
			return false
		}
	}
	return true
}
