package wal

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/argon-db/argon/internal/testsize"
)

// r28Mixed writes one spilled commit on tl of runs of random lengths (1 to
// 1,500, 1 to 12 of them: some commits are read chunk by chunk, some make the walk fall
// back part-way) over collections a, b and e; e has 4 keys, deleted as
// often as put, and index changes at every tenth entry, so that it empties
// (documents, indexes, both) and fills again; the others have 60 keys.
func r28Mixed(l *chainLog, tl, token string, rng *rand.Rand) int64 {
	lsn := l.heads[tl][1]
	var es []Entry
	prev := ""
	for runs := 1 + rng.IntN(12); runs > 0; runs-- {
		n := []int{1, 2, 3, 1, 2, 100 + rng.IntN(200), 400 + rng.IntN(1100)}[rng.IntN(7)]
		coll := prev
		for coll == prev {
			coll = []string{"a", "b", "e"}[rng.IntN(3)]
		}
		prev = coll
		for j := 0; j < n; j++ {
			lsn++
			keys, dels := 60, 10
			if coll == "e" {
				keys, dels = 4, 20
			}
			k := rng.IntN(keys)
			switch r := rng.IntN(40); {
			case r < 36-dels:
				es = append(es, l.entry(tl, lsn, coll, OpPut, token, k))
			case r < 36:
				es = append(es, l.entry(tl, lsn, coll, OpDel, token, k))
			case r < 38:
				es = append(es, l.entry(tl, lsn, coll, OpIndex, token, k%2))
			default:
				e := l.entry(tl, lsn, coll, OpIndex, token, k%2)
				e.Op, e.Doc = OpDropIndex, nil
				es = append(es, e)
			}
		}
	}
	l.commit(tl, token, es)
	return lsn
}

// Random histories of commits read by chunk and not (r28Mixed), inline
// commits, format-1 commits and losing writers' chunks at committed
// LSNs, on main and a fork taken at a random LSN of it (often inside a
// commit, and a chunk): at random LSNs, the image from the log is the
// fold's byte for byte, FoldEach from the log streams the fold (whole and
// by collection), and eachEntryByChunk gives what EachEntry gives,
// whether or not, and wherever, it fell back.
func TestReview28RandomHistories(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} { // walks that fall back mostly; once
		l := newChainLog(t)
		smallChunks(l.r)
		rng := rand.New(rand.NewPCG(28, 100+seed))
		colls := []string{"a", "b", "e"}
		write := func(tl, name string, n int) []int64 {
			var hs []int64
			for i := 0; i < n; i++ {
				token := fmt.Sprintf("%s%d", name, i)
				var h int64
				switch r := rng.IntN(10); {
				case r < 5:
					h = r28Mixed(l, tl, token, rng)
				case r < 7:
					h = r28Inline(l, tl, token, rng, colls, 1+rng.IntN(20))
				case r < 9:
					h = r28Format1(l, tl, token, colls[rng.IntN(3)], 1+rng.IntN(5))
				default:
					base := l.heads[tl][1]
					r28Loser(l, tl, token+"lost", base, 50+rng.IntN(300), colls[rng.IntN(3)])
					h = r28Mixed(l, tl, token, rng)
				}
				hs = append(hs, h)
			}
			return hs
		}
		hs := write(l.main, "m", 6)
		fork := 1 + rng.Int64N(hs[len(hs)-1])
		f := l.forkAt("f", fork)
		fs := write(f, "f", 3)
		fell := 0
		// Two random points on each branch in the README's suite, four at
		// the nightly size (internal/testsize).
		for i := 0; i < testsize.Pick(2, 4); i++ {
			if r28Check(t, l, l.main, 1+rng.Int64N(hs[len(hs)-1]), colls) {
				fell++
			}
			if r28Check(t, l, f, fork+rng.Int64N(fs[len(fs)-1]-fork+1), colls) {
				fell++
			}
		}
		t.Logf("seed %d: %d of %d walks fell back", seed, fell, 2*testsize.Pick(2, 4))
	}
}
