package queue

// The treap keeps sessions in queue order without keys: a node's position is
// the number of nodes before it, found from subtree sizes. Parent pointers
// let a node find its own position from a CallID lookup.

func size(n *node) int {
	if n == nil {
		return 0
	}
	return n.size
}

// fix recomputes n's size and points its children back at it.
func fix(n *node) {
	n.size = 1 + size(n.left) + size(n.right)
	if n.left != nil {
		n.left.parent = n
	}
	if n.right != nil {
		n.right.parent = n
	}
}

// split cuts t into the first k nodes and the rest.
func split(t *node, k int) (*node, *node) {
	if t == nil {
		return nil, nil
	}
	if size(t.left) >= k {
		l, r := split(t.left, k)
		t.left = r
		fix(t)
		if l != nil {
			l.parent = nil
		}
		return l, t
	}
	l, r := split(t.right, k-size(t.left)-1)
	t.right = l
	fix(t)
	if r != nil {
		r.parent = nil
	}
	return t, r
}

// merge joins a and b, every node of a before every node of b.
func merge(a, b *node) *node {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		fix(a)
		return a
	default:
		b.left = merge(a, b.left)
		fix(b)
		return b
	}
}

func (q *Queue) setRoot(n *node) {
	q.root = n
	if n != nil {
		n.parent = nil
	}
}

// insertAt puts the single node n at 1-based position pos.
func (q *Queue) insertAt(pos int, n *node) {
	n.left, n.right, n.parent, n.size = nil, nil, nil, 1
	l, r := split(q.root, pos-1)
	q.setRoot(merge(merge(l, n), r))
}

// removeAt takes out the node at 1-based position pos.
func (q *Queue) removeAt(pos int) {
	l, rest := split(q.root, pos-1)
	_, r := split(rest, 1)
	q.setRoot(merge(l, r))
}

func (q *Queue) nodeAt(pos int) *node {
	n := q.root
	for n != nil {
		ls := size(n.left)
		switch {
		case pos <= ls:
			n = n.left
		case pos == ls+1:
			return n
		default:
			pos -= ls + 1
			n = n.right
		}
	}
	return nil
}

// rank returns n's 1-based position.
func rank(n *node) int {
	r := size(n.left) + 1
	for ; n.parent != nil; n = n.parent {
		if n == n.parent.right {
			r += size(n.parent.left) + 1
		}
	}
	return r
}

// next returns the node after n in queue order.
func next(n *node) *node {
	if n.right != nil {
		n = n.right
		for n.left != nil {
			n = n.left
		}
		return n
	}
	for n.parent != nil && n == n.parent.right {
		n = n.parent
	}
	return n.parent
}
