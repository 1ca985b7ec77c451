package store

import (
	"net/url"
	"regexp"
	"strings"
)

// userinfoRe matches the credentials part of a mongodb:// or mongodb+srv://
// URI, including URIs that net/url refuses to parse (several hosts, odd
// characters in the password).
var userinfoRe = regexp.MustCompile(`(mongodb(?:\+srv)?://)([^@/\s]+)@`)

// Redact returns uri with its password replaced by "xxxxx". It never fails:
// a string that is not a URI comes back unchanged.
func Redact(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return uri
	}
	return redactAll(uri)
}

// redactAll hides the password of every URI-shaped credential in s.
func redactAll(s string) string {
	return userinfoRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRe.FindStringSubmatch(m)
		user, _, hasPass := strings.Cut(sub[2], ":")
		if !hasPass {
			return m
		}
		return sub[1] + user + ":xxxxx@"
	})
}

// RedactIn replaces every occurrence of uri inside s (typically a driver
// error message) with its redacted form, and redacts any other URI-shaped
// credentials it finds.
func RedactIn(s, uri string) string {
	if uri != "" {
		s = strings.ReplaceAll(s, uri, Redact(uri))
		// The driver may quote parts of the URI: its password alone, too.
		if u, err := url.Parse(uri); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 {
				s = strings.ReplaceAll(s, pw, "xxxxx")
			}
		}
	}
	return redactAll(s)
}
