package nodeapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerRejectsBadRequests(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := NewServer("/unused", store, nil).Handler()
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantBody                 string
	}{
		{"unknown field", "POST", "/v1/register", `{"containerID":"a","ifName":"eth0","ip":"10.0.0.1"}`, 400, `unknown field \"ip\"`},
		{"bad JSON", "POST", "/v1/register", `{"containerID":`, 400, "decode request body"},
		{"unregister absent", "POST", "/v1/unregister", `{"containerID":"a","ifName":"eth0"}`, 204, ""},
		{"invalid ifname", "POST", "/v1/unregister", `{"containerID":"a","ifName":"a/b"}`, 400, "ifName"},
		{"invalid IP", "POST", "/v1/register", `{"containerID":"a","ifName":"eth0","ips":["x"]}`, 400, "decode request body"},
		{"too large", "POST", "/v1/register", `{"containerID":"` + strings.Repeat("a", maxBody) + `"}`, 400, "too large"},
		{"wrong method", "GET", "/v1/register", ``, 405, ""},
		{"unknown path", "GET", "/v2/status", ``, 404, ""},
		{"missing query", "GET", "/v1/registration", ``, 400, "containerID"},
		{"absent registration", "GET", "/v1/registration?containerID=a&ifName=eth0", ``, 404, "not found"},
		{"status without source", "GET", "/v1/status", ``, 200, `"ready":false`},
		{"gc with nothing valid", "POST", "/v1/gc", `{"valid":[]}`, 200, `"removed":[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("%s %s = %d %q; want %d containing %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
	if n := len(store.List()); n != 0 {
		t.Errorf("bad requests left %d registrations", n)
	}
}
