package rest

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/tbsim/tbsim/tbemu/core"
)

func (h *handler) createPackage(w http.ResponseWriter, r *http.Request) {
	var req packageJSON
	if err := h.decodeBody(w, r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	if req.DeviceProfileID != nil {
		if _, ok := h.checkID(w, req.DeviceProfileID.ID); !ok {
			return
		}
	}
	if req.Type != "" && req.Type != "FIRMWARE" {
		h.badRequest(w, "OtaPackage type "+req.Type+" is not supported: only FIRMWARE")
		return
	}
	spec := core.PackageSpec{Title: req.Title, Version: req.Version}
	if req.DeviceProfileID != nil {
		spec.ProfileID = req.DeviceProfileID.ID
	}
	if req.Tag != nil {
		spec.Tag = *req.Tag
	}
	p, err := h.c.CreatePackage(spec)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

// uploadPackage reads the multipart part "file" as a stream, so an upload
// never costs more than the package limit in memory nor any temporary file:
// beyond the limit it is 413 with ThingsBoard's MaxPayloadSizeExceeded body.
func (h *handler) uploadPackage(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	q := r.URL.Query()
	alg := q.Get("checksumAlgorithm")
	if alg == "" {
		h.badRequest(w, "Required request parameter 'checksumAlgorithm' for method parameter type String is not present")
		return
	}
	limit := h.c.MaxPackageSize()
	if limit > 0 {
		// The file plus the multipart framing and the other parts.
		if r.ContentLength > limit+multipartSlack {
			h.payloadTooLarge(w, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit+multipartSlack)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		h.badRequest(w, "Current request is not a multipart request")
		return
	}
	var data []byte
	var fileName, contentType string
	found := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			h.uploadError(w, err, limit)
			return
		}
		if part.FormName() != "file" || found {
			if _, err := io.Copy(io.Discard, part); err != nil {
				h.uploadError(w, err, limit)
				return
			}
			continue
		}
		found, fileName, contentType = true, part.FileName(), part.Header.Get("Content-Type")
		src := io.Reader(part)
		if limit > 0 {
			src = io.LimitReader(part, limit+1)
		}
		if data, err = io.ReadAll(src); err != nil {
			h.uploadError(w, err, limit)
			return
		}
		if limit > 0 && int64(len(data)) > limit {
			h.payloadTooLarge(w, limit)
			return
		}
	}
	if !found {
		h.badRequest(w, "Required part 'file' is not present.")
		return
	}
	p, err := h.c.UploadPackage(id, data, alg, q.Get("checksum"), fileName, contentType)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

// multipartSlack is what an upload may carry beside the file's bytes.
const multipartSlack = 64 << 10

func (h *handler) uploadError(w http.ResponseWriter, err error, limit int64) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		h.payloadTooLarge(w, limit)
		return
	}
	h.badRequest(w, "Failed to parse multipart servlet request: "+err.Error())
}

func (h *handler) listPackages(w http.ResponseWriter, r *http.Request) {
	size, pg, ok := h.pageLink(w, r)
	if !ok {
		return
	}
	var out []packageJSON
	for _, p := range h.c.Packages() {
		out = append(out, toPackageJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(out, size, pg))
}

func (h *handler) getPackage(w http.ResponseWriter, r *http.Request) {
	h.writePackage(w, r.PathValue("id"))
}

func (h *handler) writePackage(w http.ResponseWriter, id string) {
	if _, ok := h.checkID(w, id); !ok {
		return
	}
	p, ok := h.c.Package(id)
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) downloadPackage(w http.ResponseWriter, id string) {
	if _, ok := h.checkID(w, id); !ok {
		return
	}
	p, ok := h.c.Package(id)
	data, ok2 := h.c.PackageData(p.ID)
	if !ok || !ok2 {
		h.writeError(w, core.ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.FileName}))
	w.Write(data)
}

func (h *handler) deletePackage(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	if err := h.c.DeletePackage(id); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
