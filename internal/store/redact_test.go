package store

import "testing"

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://ada:s3cret@db:27017/x", "mongodb://ada:xxxxx@db:27017/x"},
		{"mongodb+srv://ada:p%40ss@cluster.example.net/", "mongodb+srv://ada:xxxxx@cluster.example.net/"},
		{"mongodb://ada@db/", "mongodb://ada@db/"},
		{"mongodb://db1,db2/?replicaSet=rs", "mongodb://db1,db2/?replicaSet=rs"},
		{"mongodb://ada:s3cret@db1:1,db2:2/?replicaSet=rs", "mongodb://ada:xxxxx@db1:1,db2:2/?replicaSet=rs"},
		{"not a uri", "not a uri"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactIn(t *testing.T) {
	uri := "mongodb://ada:s3cret@db:27017/"
	msg := "auth failed for " + uri + " (password s3cret rejected); other mongodb://bob:hunter2@x/"
	got := RedactIn(msg, uri)
	want := "auth failed for mongodb://ada:xxxxx@db:27017/ (password xxxxx rejected); other mongodb://bob:xxxxx@x/"
	if got != want {
		t.Errorf("RedactIn = %q, want %q", got, want)
	}
}
