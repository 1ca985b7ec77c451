package store

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://ada:s3cret@db:27017/x", "mongodb://ada:xxxxx@db:27017/x"},
		{"mongodb+srv://ada:p%40ss@cluster.example.net/", "mongodb+srv://ada:xxxxx@cluster.example.net/"},
		{"mongodb://ada@db/", "mongodb://ada@db/"},
		// A mistyped scheme, or none: the password is as secret.
		{"notauri://ada:S3cretPW@x", "notauri://ada:xxxxx@x"},
		{"mongo://ada:S3cretPW@x/", "mongo://ada:xxxxx@x/"},
		{"mongodb//ada:S3cretPW@x", "mongodb//ada:xxxxx@x"},
		{"mongodb:/ada:S3cretPW@x", "mongodb:/ada:xxxxx@x"},
		{"ada:S3cretPW@x", "ada:xxxxx@x"},
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

// Every place a secret can sit in a MongoDB URI is hidden, in the URI and
// in messages that quote it or parts of it.
func TestRedactSecrets(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://db/?tlsCertificateKeyFilePassword=s3cret&tls=true", "mongodb://db/?tlsCertificateKeyFilePassword=xxxxx&tls=true"},
		{"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok123", "mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=xxxxx"},
		{"mongodb://db/?proxyHost=p&proxyPassword=pp99", "mongodb://db/?proxyHost=p&proxyPassword=xxxxx"},
		{"mongodb://db/?myApiKey=k1k1", "mongodb://db/?myApiKey=xxxxx"},
		{"mongodb://ada:pa ss@db/", "mongodb://ada:xxxxx@db/"},
		{"mongodb://ada:p@ss@db/", "mongodb://ada:xxxxx@db/"},
		{"mongodb://ada:p%20w%40rd@db:1/x?w=1", "mongodb://ada:xxxxx@db:1/x?w=1"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	uri := "mongodb://ada:pa ss@db/?tlsCertificateKeyFilePassword=kfp-secret&authMechanismProperties=AWS_SESSION_TOKEN:sess-tok"
	msg := "cannot reach " + uri + ": auth with pa ss failed; key pass kfp-secret; token sess-tok; also mongodb://x/?password=zz9&a=1"
	got := RedactIn(msg, uri)
	for _, leak := range []string{"pa ss", "kfp-secret", "sess-tok", "zz9"} {
		if strings.Contains(got, leak) {
			t.Errorf("RedactIn leaks %q: %s", leak, got)
		}
	}
}

// FuzzRedact builds URIs with a secret password and secret-bearing options
// around fuzzed text: neither Redact nor RedactIn (on a message quoting
// the URI) may print the secret.
func FuzzRedact(f *testing.F) {
	f.Add("user", "s3cr3t-pw", "db.example:27017", "appName=x")
	f.Add("a b", "p@ss:w/rd %20", "h1,h2", "")
	f.Add("u", "pw?x=1", "[::1]:27017", "tlsCertificateKeyFilePassword=q")
	f.Fuzz(func(t *testing.T, user, password, hosts, query string) {
		const secret = "Zq7Secret"
		pw := secret + password
		uri := "mongodb://" + user + ":" + pw + "@" + hosts + "/?" + query + "&authMechanismProperties=AWS_SESSION_TOKEN:" + secret + "x&proxyPassword=" + secret + "y"
		for _, out := range []string{Redact(uri), RedactIn("cannot reach "+uri+": refused", uri)} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret printed:\n uri %q\n out %q", uri, out)
			}
		}
	})
}

// A userinfo with many ':' and '@' has a quadratic number of readings,
// each replaced through the whole text: past maxReadings the pieces
// between the separators stand for them, so the work stays near linear
// (a fuzz input of this shape ran for minutes), and the secret is still
// hidden.
func TestRedactManyReadings(t *testing.T) {
	const secret = "Zq7Secret"
	uri := "mongodb://u:" + secret + strings.Repeat(":ab@cd", 300) + "@host/?x=1"
	if n := len(candidatePasswords(uri)); n > len(uri) {
		t.Fatalf("%d readings replaced one by one, for a URI of %d bytes", n, len(uri))
	}
	for _, out := range []string{Redact(uri), RedactIn("cannot reach "+uri, uri)} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret printed: %q", out)
		}
	}
}
