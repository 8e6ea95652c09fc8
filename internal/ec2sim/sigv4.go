package ec2sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// verifySigV4 re-signs a copy of the request with the secret of its access key, at the
// request's X-Amz-Date and over the headers it signed, and compares signatures.
func verifySigV4(r *http.Request, body []byte, akid string, creds map[string]string) error {
	secret, ok := creds[akid]
	if !ok {
		return errorf("AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	auth := r.Header.Get("Authorization")
	scope := credentialRE.FindStringSubmatch(auth)
	signed := field(auth, "SignedHeaders=")
	sig := field(auth, "Signature=")
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if scope == nil || signed == "" || sig == "" || err != nil {
		return errorf("IncompleteSignature", "The request signature does not conform to AWS standards.")
	}
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, r.URL.String(), bytes.NewReader(body))
	if err != nil {
		return errorf("IncompleteSignature", "The request signature does not conform to AWS standards.")
	}
	cp.Host = r.Host
	for h := range strings.SplitSeq(signed, ";") {
		if h == "host" {
			continue
		}
		cp.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = false })
	c := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := signer.SignHTTP(context.Background(), c, cp, payload, scope[4], scope[3], when); err != nil {
		return errorf("IncompleteSignature", "The request signature does not conform to AWS standards.")
	}
	if field(cp.Header.Get("Authorization"), "Signature=") != sig {
		return errorf("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

func field(auth, key string) string {
	i := strings.Index(auth, key)
	if i < 0 {
		return ""
	}
	v := auth[i+len(key):]
	if j := strings.IndexAny(v, ", "); j >= 0 {
		v = v[:j]
	}
	return v
}

var _ = query.APIVersion
