package rest

import (
	"errors"
	"io"
	"net/http"

	"github.com/tbsim/tbsim/tbemu/core"
)

func (h *handler) createPackage(w http.ResponseWriter, r *http.Request) {
	var req packageJSON
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, err)
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

func (h *handler) uploadPackage(w http.ResponseWriter, r *http.Request) {
	alg := r.URL.Query().Get("checksumAlgorithm")
	if alg == "" {
		h.writeError(w, errors.Join(core.ErrInvalid, errors.New("Required request parameter 'checksumAlgorithm' is not present")))
		return
	}
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, err))
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, errors.New("Required part 'file' is not present")))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		h.writeError(w, err)
		return
	}
	p, err := h.c.UploadPackage(r.PathValue("id"), data, alg, r.URL.Query().Get("checksum"), hdr.Filename, hdr.Header.Get("Content-Type"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) listPackages(w http.ResponseWriter, r *http.Request) {
	var out []packageJSON
	for _, p := range h.c.Packages() {
		out = append(out, toPackageJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (h *handler) getPackage(w http.ResponseWriter, r *http.Request) {
	h.writePackage(w, r.PathValue("id"))
}

func (h *handler) writePackage(w http.ResponseWriter, id string) {
	p, ok := h.c.Package(id)
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) downloadPackage(w http.ResponseWriter, id string) {
	p, ok := h.c.Package(id)
	data, ok2 := h.c.PackageData(p.ID)
	if !ok || !ok2 {
		h.writeError(w, core.ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+p.FileName+`"`)
	w.Write(data)
}

func (h *handler) deletePackage(w http.ResponseWriter, r *http.Request) {
	if err := h.c.DeletePackage(r.PathValue("id")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
