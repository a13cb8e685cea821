// Checks an AsyncAPI document the way an outside team's tooling reads it: the official parser
// (@asyncapi/parser) must accept it, and every message example must validate against the
// message's JSON Schema (ajv, draft-07, formats on).
// Usage: node asyncapi_validate.cjs TOOLS_DIR FILE   (TOOLS_DIR: scripts/services/asyncapi-parser.sh)
const { createRequire } = require('node:module');
const fs = require('node:fs');
const path = require('node:path');

const [toolsDir, file] = process.argv.slice(2);
const load = createRequire(path.join(path.resolve(toolsDir), 'package.json'));
const { Parser } = load('@asyncapi/parser');
const Ajv = load('ajv');
const addFormats = load('ajv-formats');

(async () => {
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'));
  const severities = ['error', 'warning', 'info', 'hint'];
  for (const d of diagnostics) {
    console.log(`${severities[d.severity]} ${d.code} ${d.path.join('.')}: ${d.message}`);
  }
  let errors = diagnostics.filter((d) => d.severity === 0).length;
  if (!document) {
    console.log(`${errors} parser errors; document not usable`);
    process.exit(1);
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  // Integer widths schemars emits (the range is also in minimum/maximum).
  for (const [name, max] of [['uint8', 255], ['uint16', 65535], ['uint32', 4294967295], ['uint64', Number.MAX_SAFE_INTEGER], ['uint', Number.MAX_SAFE_INTEGER]]) {
    ajv.addFormat(name, { type: 'number', validate: (n) => Number.isInteger(n) && n >= 0 && n <= max });
  }
  for (const name of ['int8', 'int16', 'int32', 'int64', 'int']) {
    ajv.addFormat(name, { type: 'number', validate: (n) => Number.isInteger(n) });
  }
  let examples = 0;
  for (const message of document.allMessages()) {
    const raw = message.json();
    const schema = raw.payload && raw.payload.schema ? raw.payload.schema : raw.payload;
    const validate = ajv.compile(schema);
    for (const example of raw.examples || []) {
      examples += 1;
      if (!validate(example.payload)) {
        errors += 1;
        console.log(`error example ${message.id()}/${example.name}: ${ajv.errorsText(validate.errors)}`);
      }
    }
  }
  console.log(`${errors} errors; ${document.channels().length} channels; ${examples} examples validated`);
  process.exit(errors === 0 ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
