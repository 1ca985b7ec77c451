package store

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

const hidden = "xxxxx"

// userinfoRe matches the credentials part of a mongodb:// or mongodb+srv://
// URI inside free text, including URIs that net/url refuses to parse
// (several hosts, odd characters in the password).
var userinfoRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^@/\s]+)@`)

// otherScheme matches a URI scheme other than MongoDB's, mistyped or not.
var otherScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*:/+`)

// secretParamRe matches a URI option that can carry a secret, inside free
// text: its value is hidden.
var secretParamRe = regexp.MustCompile(`(?i)([?&;](?:[a-z0-9_]*(?:password|secret|token|key)[a-z0-9_]*|authMechanismProperties)=)([^&;\s"']+)`)

// sensitiveOption reports whether a URI option can carry a secret: the
// known ones (password, tlsCertificateKeyFilePassword, proxyPassword,
// authMechanismProperties with its session tokens) and any whose name says
// password, secret, token or key.
func sensitiveOption(name string) bool {
	n := strings.ToLower(name)
	if n == "authmechanismproperties" {
		return true
	}
	for _, w := range []string{"password", "secret", "token", "key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// split cuts a mongodb URI into scheme ("mongodb://"), userinfo (without
// its '@'), the rest of the authority and path, and the query (without
// '?'). The password may hold '@', ':' or spaces: the host starts after
// the last '@' before the query.
func split(uri string) (scheme, userinfo, hostPath, query string, ok bool) {
	for _, s := range []string{"mongodb://", "mongodb+srv://"} {
		if strings.HasPrefix(uri, s) {
			scheme = s
		}
	}
	if scheme == "" {
		// A mistyped scheme (mongo://, http://, mongodb//) or none: the
		// credentials in it are as secret as in a well-formed URI.
		if m := otherScheme.FindString(uri); m != "" {
			scheme = m
		} else if !strings.Contains(uri, "@") {
			return "", "", "", "", false
		}
	}
	rest := uri[len(scheme):]
	// The userinfo ends at the last '@' that a host list follows (hosts
	// hold no '@', '/' or '?'): a password typed with '?', '/' or '@' in
	// it, unescaped, still counts as the password.
	for at := strings.LastIndex(rest, "@"); at >= 0; at = strings.LastIndex(rest[:at], "@") {
		after := rest[at+1:]
		end := strings.IndexAny(after, "/?")
		if end < 0 {
			end = len(after)
		}
		main, q, _ := strings.Cut(after, "?")
		if hostList.MatchString(after[:end]) && !strings.Contains(main, "@") {
			return scheme, rest[:at], main, q, true
		}
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		// No host list after any '@' (a malformed URI): take the last one,
		// hiding too much rather than too little.
		main, q, _ := strings.Cut(rest[at+1:], "?")
		return scheme, rest[:at], main, q, true
	}
	main, q, _ := strings.Cut(rest, "?")
	return scheme, "", main, q, true
}

// hostList matches the hosts of a mongodb URI: names, IPv4 and bracketed
// IPv6 addresses with ports, separated by commas.
var hostList = regexp.MustCompile(`^[A-Za-z0-9._%\-:\[\],]+$`)

// Redact returns uri with every secret in it replaced by "xxxxx": the
// password of its userinfo, and the values of options that can carry one.
// It never fails: a string that is not a URI comes back with any
// URI-shaped credentials in it hidden.
func Redact(uri string) string {
	// First the values of secret options, while the separators before
	// them are as given: hiding a password reading below may swallow the
	// '&' before an option's name.
	uri = secretParamRe.ReplaceAllString(uri, "${1}"+hidden)
	// Then the password under every reading of the userinfo, while the
	// text is as given (the rest below rewrites separators).
	for _, pw := range candidatePasswords(uri) {
		if len(pw) >= 3 {
			uri = strings.ReplaceAll(uri, pw, hidden)
		}
	}
	scheme, userinfo, hostPath, query, ok := split(uri)
	if !ok {
		return redactAll(uri)
	}
	out := scheme
	if userinfo != "" {
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			out += user + ":" + hidden + "@"
		} else {
			out += userinfo + "@"
		}
	}
	out += hostPath
	if query != "" {
		params := strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
		for i, p := range params {
			if k, _, has := strings.Cut(p, "="); has && sensitiveOption(k) {
				params[i] = k + "=" + hidden
			}
		}
		out += "?" + strings.Join(params, "&")
	}
	// Once more over the whole, for what a malformed URI put where the
	// split did not expect it: secret options, and the password as every
	// other reading of the userinfo would have it.
	out = redactAll(out)
	for _, pw := range candidatePasswords(uri) {
		if len(pw) >= 3 {
			out = strings.ReplaceAll(out, pw, hidden)
		}
	}
	return out
}

// candidatePasswords returns the password under every reading of a
// malformed URI's userinfo (from any ':' to any '@' after it), longest
// first, so that whichever the driver or the user meant is hidden, and a
// shorter reading never breaks up a longer one before it is replaced.
func candidatePasswords(uri string) []string {
	scheme, _, _, _, ok := split(uri)
	if !ok {
		return nil
	}
	rest := uri[len(scheme):]
	if q := strings.LastIndex(rest, "@"); q >= 0 {
		rest = rest[:q+1]
	}
	// Readings are pairs of a ':' and a later '@': quadratic in number,
	// each replaced in text as long as the URI. Past maxReadings (a URI
	// no one writes, but fuzzing does: one such input ran for minutes),
	// the pieces between those separators stand for them instead: every
	// reading is made of pieces, so hiding each piece hides every reading
	// but its separators.
	readings := 0
	colons := 0
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case ':':
			colons++
		case '@':
			readings += colons
		}
	}
	var out []string
	if readings > maxReadings {
		first := strings.IndexByte(rest, ':')
		seen := map[string]bool{}
		for _, piece := range strings.FieldsFunc(rest[first+1:], func(r rune) bool { return r == ':' || r == '@' }) {
			if !seen[piece] {
				seen[piece] = true
				out = append(out, piece)
			}
		}
	} else {
		for c := 0; c < len(rest); c++ {
			if rest[c] != ':' {
				continue
			}
			for at := c + 1; at < len(rest); at++ {
				if rest[at] == '@' && at > c+1 {
					out = append(out, rest[c+1:at])
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// maxReadings is the most readings of a URI's userinfo replaced one by one
// (see candidatePasswords).
const maxReadings = 64

// secrets lists the secret strings of uri as they may appear in messages:
// raw and percent-decoded.
func secrets(uri string) []string {
	_, userinfo, _, query, ok := split(uri)
	if !ok {
		return nil
	}
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
	}
	if _, pw, has := strings.Cut(userinfo, ":"); has {
		add(pw)
	}
	for _, pw := range candidatePasswords(uri) {
		add(pw)
	}
	for _, p := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, has := strings.Cut(p, "=")
		if !has || !sensitiveOption(k) {
			continue
		}
		add(v)
		// authMechanismProperties=NAME:VALUE,NAME:VALUE: each value too.
		for _, item := range strings.Split(v, ",") {
			if _, val, ok := strings.Cut(item, ":"); ok {
				add(val)
			}
		}
	}
	return out
}

// redactAll hides the password of every URI-shaped credential in s, and the
// value of every secret-carrying option.
func redactAll(s string) string {
	s = userinfoRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRe.FindStringSubmatch(m)
		user, _, hasPass := strings.Cut(sub[2], ":")
		if !hasPass {
			return m
		}
		return sub[1] + user + ":" + hidden + "@"
	})
	return secretParamRe.ReplaceAllString(s, "${1}"+hidden)
}

// RedactIn hides, in s (an error message, a status line), every secret of
// uri — the whole URI, and its password and secret option values alone,
// raw or decoded — and any other URI-shaped credentials.
func RedactIn(s, uri string) string {
	if uri != "" {
		s = strings.ReplaceAll(s, uri, Redact(uri))
		for _, sec := range secrets(uri) {
			if len(sec) >= 3 {
				s = strings.ReplaceAll(s, sec, hidden)
			}
		}
	}
	return redactAll(s)
}
