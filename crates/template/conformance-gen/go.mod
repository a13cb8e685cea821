module midplane.dev/template-conformance-gen

go 1.22
