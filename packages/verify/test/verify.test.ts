import { createHmac, randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError as ReferenceError } from 'standardwebhooks';
import { verify, createVerifier, WebhookVerificationError, VERIFICATION_ERROR_STATUS, type HeadersInput, type WebhookVerificationErrorCode } from '../src/index';

// verify() against the `standardwebhooks` reference package: it signs, ours
// must accept; for every mutated request both must agree. The hex header is
// signed here with node:crypto as an integrator's snippet would, never with
// Hookline's own signer (a check made with the signer's code proves nothing).

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

const BODY = JSON.stringify({
  id: 'evt_0123456789abcdef',
  event: 'extraction.document_completed',
  created_at: '2026-11-30T08:00:00.000Z',
  test: false,
  data: { extraction_id: 'ext_1', document_id: 'doc_1', parser_id: 'invoices', status: 'completed', file_name: 'ä.pdf', result: { total: 12.5, vendor: 'Ünïcødé GmbH' } },
});

/** Standard Webhooks headers made by the reference package, one signature per secret (rotation: several). */
function standardHeaders(secrets: string[], body: string, opts: { id?: string; timestamp?: number } = {}): Record<string, string> {
  const id = opts.id ?? `dlv_${randomBytes(8).toString('hex')}`;
  const timestamp = opts.timestamp ?? nowSeconds();
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, new Date(timestamp * 1000), body)).join(' '),
  };
}

/** X-<brand>-Signature as PerfectParser's snippet computes it: hex HMAC of the body keyed with the whole whsec_ string. */
const hexSignature = (secrets: string[], body: string) => secrets.map((s) => createHmac('sha256', s).update(body, 'utf8').digest('hex')).join(',');

/** The code verify() refused with, or 'accepted'. */
function outcome(body: string | Buffer, headers: HeadersInput, secret: string | string[], options = {}): WebhookVerificationErrorCode | 'accepted' {
  try {
    verify(body, headers, secret, options);
    return 'accepted';
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.code;
    throw err;
  }
}

/** What the reference package says about the same request. */
function referenceAccepts(secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch (err) {
    if (err instanceof ReferenceError) return false;
    throw err;
  }
}

describe('verify: Standard Webhooks signatures made by the standardwebhooks package', () => {
  const secret = newSecret();

  it('accepts them and returns the parsed event, from a string or a Buffer body', () => {
    const headers = standardHeaders([secret], BODY);
    expect(verify(BODY, headers, secret)).toEqual(JSON.parse(BODY));
    expect(verify(Buffer.from(BODY, 'utf8'), headers, secret)).toEqual(JSON.parse(BODY));
    expect(verify(new Uint8Array(Buffer.from(BODY, 'utf8')), headers, secret).data).toMatchObject({ file_name: 'ä.pdf' });
  });

  it('reads header names in any case, from a plain object or a Fetch Headers', () => {
    const headers = standardHeaders([secret], BODY);
    const shouting = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verify(BODY, shouting, secret).id).toBe('evt_0123456789abcdef');
    expect(verify(BODY, new Headers(headers), secret).id).toBe('evt_0123456789abcdef');
    // Node's IncomingHttpHeaders shape: an array value counts by its first entry.
    expect(verify(BODY, { ...headers, 'webhook-signature': [headers['webhook-signature'], 'v1,junk'] }, secret).id).toBe('evt_0123456789abcdef');
  });

  it('refuses a changed body, id or timestamp, and a wrong secret (invalid_signature)', () => {
    const headers = standardHeaders([secret], BODY);
    expect(outcome(BODY.replace('12.5', '13.5'), headers, secret)).toBe('invalid_signature');
    expect(outcome(`${BODY} `, headers, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...headers, 'webhook-id': 'dlv_other' }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 1) }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, headers, newSecret())).toBe('invalid_signature');
  });

  it('accepts only v1 entries: another version or a malformed entry never matches', () => {
    const headers = standardHeaders([secret], BODY);
    const mac = headers['webhook-signature'].slice('v1,'.length);
    expect(outcome(BODY, { ...headers, 'webhook-signature': `v2,${mac}` }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...headers, 'webhook-signature': mac }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...headers, 'webhook-signature': `v1a,${mac} ,${mac} v1,` }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...headers, 'webhook-signature': `  v2,xyz   v1,${mac}  ` }, secret)).toBe('accepted');
  });

  it('refuses timestamps outside the tolerance (default 5 minutes) either way, and accepts them inside it', () => {
    const at = (offset: number, options = {}) => outcome(BODY, standardHeaders([secret], BODY, { timestamp: nowSeconds() + offset }), secret, options);
    expect(at(-290)).toBe('accepted');
    expect(at(290)).toBe('accepted');
    expect(at(-310)).toBe('timestamp_too_old');
    expect(at(310)).toBe('timestamp_in_future');
    expect(at(-3600)).toBe('timestamp_too_old');
    // tolerance is in seconds
    expect(at(-20, { tolerance: 10 })).toBe('timestamp_too_old');
    expect(at(20, { tolerance: 10 })).toBe('timestamp_in_future');
    expect(at(-20, { tolerance: 30 })).toBe('accepted');
    expect(at(-3600, { tolerance: 7200 })).toBe('accepted');
  });

  it('checks the timestamp before the signature: a stale replay says so even when its signature is right', () => {
    const stale = standardHeaders([secret], BODY, { timestamp: nowSeconds() - 600 });
    expect(referenceAccepts(secret, BODY, stale)).toBe(false);
    expect(outcome(BODY, stale, secret)).toBe('timestamp_too_old');
  });

  it('refuses missing or malformed companion headers', () => {
    const headers = standardHeaders([secret], BODY);
    const { 'webhook-id': _id, ...noId } = headers;
    const { 'webhook-timestamp': _ts, ...noTimestamp } = headers;
    expect(outcome(BODY, noId, secret)).toBe('missing_headers');
    expect(outcome(BODY, noTimestamp, secret)).toBe('missing_headers');
    expect(outcome(BODY, { ...headers, 'webhook-timestamp': '17e8' }, secret)).toBe('invalid_timestamp');
    expect(outcome(BODY, { ...headers, 'webhook-timestamp': `${headers['webhook-timestamp']}.5` }, secret)).toBe('invalid_timestamp');
    expect(outcome(BODY, {}, secret)).toBe('missing_headers');
  });

  it('agrees with the reference package on every variant of a request', () => {
    const other = newSecret();
    const good = standardHeaders([secret], BODY);
    const variants: Array<{ body: string; headers: Record<string, string>; secret: string }> = [
      { body: BODY, headers: good, secret },
      { body: BODY, headers: good, secret: other },
      { body: BODY.replace('"test":false', '"test":true'), headers: good, secret },
      { body: BODY, headers: { ...good, 'webhook-id': `${good['webhook-id']}x` }, secret },
      { body: BODY, headers: standardHeaders([other, secret], BODY), secret },
      { body: BODY, headers: standardHeaders([other], BODY), secret },
      { body: BODY, headers: standardHeaders([secret], BODY, { timestamp: nowSeconds() - 299 }), secret },
      { body: BODY, headers: standardHeaders([secret], BODY, { timestamp: nowSeconds() - 400 }), secret },
      { body: BODY, headers: standardHeaders([secret], BODY, { timestamp: nowSeconds() + 400 }), secret },
      { body: BODY, headers: { ...good, 'webhook-signature': good['webhook-signature'].replace('v1,', 'v2,') }, secret },
      { body: BODY, headers: { 'webhook-id': good['webhook-id'], 'webhook-signature': good['webhook-signature'] }, secret },
    ];
    for (const v of variants) {
      const ours = outcome(v.body, v.headers, v.secret) === 'accepted';
      expect({ variant: variants.indexOf(v), accepted: ours }).toEqual({ variant: variants.indexOf(v), accepted: referenceAccepts(v.secret, v.body, v.headers) });
    }
    // Both ways round: our verify accepts what the reference signs, and the reference accepts what ours accepts.
    expect(variants.filter((v) => referenceAccepts(v.secret, v.body, v.headers)).length).toBe(3);
  });
});

describe('verify: a secret rotation', () => {
  const oldSecret = newSecret();
  const newer = newSecret();

  it('accepts a callback signed with both secrets by a receiver holding either one', () => {
    const headers = { ...standardHeaders([newer, oldSecret], BODY), 'X-PerfectParser-Signature': hexSignature([newer, oldSecret], BODY) };
    expect(outcome(BODY, headers, oldSecret)).toBe('accepted');
    expect(outcome(BODY, headers, newer)).toBe('accepted');
    expect(outcome(BODY, headers, newSecret())).toBe('invalid_signature');
  });

  it('does the same for the hex header alone (comma-separated signatures)', () => {
    const headers = { 'x-perfectparser-signature': hexSignature([newer, oldSecret], BODY) };
    expect(outcome(BODY, headers, oldSecret)).toBe('accepted');
    expect(outcome(BODY, headers, newer)).toBe('accepted');
    expect(outcome(BODY, { 'x-perfectparser-signature': `${hexSignature([newer], BODY)} , ${hexSignature([oldSecret], BODY)}` }, oldSecret)).toBe('accepted');
    expect(outcome(BODY, headers, newSecret())).toBe('invalid_signature');
  });

  it('lets a receiver hold several secrets: any one matching is enough', () => {
    expect(outcome(BODY, standardHeaders([oldSecret], BODY), [newer, oldSecret])).toBe('accepted');
    expect(outcome(BODY, standardHeaders([newer], BODY), [newer, oldSecret])).toBe('accepted');
    expect(outcome(BODY, { 'x-perfectparser-signature': hexSignature([oldSecret], BODY) }, [newer, oldSecret])).toBe('accepted');
    expect(outcome(BODY, standardHeaders([newSecret()], BODY), [newer, oldSecret])).toBe('invalid_signature');
  });
});

describe('verify: the hex X-<brand>-Signature, where webhook-signature is absent', () => {
  const secret = newSecret();

  it('accepts it alone, keyed with the whole whsec_ string, in upper or lower case', () => {
    expect(verify(BODY, { 'X-PerfectParser-Signature': hexSignature([secret], BODY) }, secret).event).toBe('extraction.document_completed');
    expect(outcome(BODY, { 'x-perfectparser-signature': hexSignature([secret], BODY).toUpperCase() }, secret)).toBe('accepted');
    // Keyed with the decoded bytes instead, it is not Hookline's signature.
    const decodedKey = Buffer.from(secret.slice('whsec_'.length), 'base64');
    expect(outcome(BODY, { 'x-perfectparser-signature': createHmac('sha256', decodedKey).update(BODY).digest('hex') }, secret)).toBe('invalid_signature');
  });

  it('refuses a changed body or a wrong secret', () => {
    const headers = { 'x-perfectparser-signature': hexSignature([secret], BODY) };
    expect(outcome(BODY.replace('ext_1', 'ext_2'), headers, secret)).toBe('invalid_signature');
    expect(outcome(BODY, headers, newSecret())).toBe('invalid_signature');
    expect(outcome(BODY, { 'x-perfectparser-signature': '' }, secret)).toBe('invalid_signature');
  });

  it('reads the header of the configured brand, in any case', () => {
    const headers = { 'X-Acme-Signature': hexSignature([secret], BODY) };
    expect(outcome(BODY, headers, secret, { brand: 'Acme' })).toBe('accepted');
    expect(outcome(BODY, { 'x-acme-signature': headers['X-Acme-Signature'] }, secret, { brand: 'ACME' })).toBe('accepted');
    expect(outcome(BODY, headers, secret)).toBe('missing_headers');
    expect(outcome(BODY, { 'x-perfectparser-signature': headers['X-Acme-Signature'] }, secret, { brand: 'Acme' })).toBe('missing_headers');
  });

  it('is refused with hexFallback: false (it signs no timestamp, so a stripped replay would pass)', () => {
    const headers = { 'x-perfectparser-signature': hexSignature([secret], BODY) };
    expect(outcome(BODY, headers, secret, { hexFallback: false })).toBe('missing_headers');
    expect(outcome(BODY, { ...headers, ...standardHeaders([secret], BODY) }, secret, { hexFallback: false })).toBe('accepted');
  });

  it('is not a fallback when webhook-signature is present but wrong or stale: no downgrade', () => {
    const hex = { 'x-perfectparser-signature': hexSignature([secret], BODY) };
    expect(outcome(BODY, { ...hex, ...standardHeaders([newSecret()], BODY) }, secret)).toBe('invalid_signature');
    expect(outcome(BODY, { ...hex, ...standardHeaders([secret], BODY, { timestamp: nowSeconds() - 3600 }) }, secret)).toBe('timestamp_too_old');
  });
});

describe('verify: the static secret, the payload and the configuration', () => {
  const secret = newSecret();
  const signed = () => standardHeaders([secret], BODY);

  it('checks X-Webhook-Secret when staticSecret is given', () => {
    expect(outcome(BODY, { ...signed(), 'X-Webhook-Secret': 'static-token' }, secret, { staticSecret: 'static-token' })).toBe('accepted');
    expect(outcome(BODY, { ...signed(), 'X-Webhook-Secret': 'static-tokem' }, secret, { staticSecret: 'static-token' })).toBe('invalid_static_secret');
    expect(outcome(BODY, { ...signed(), 'X-Webhook-Secret': 'static-token-longer' }, secret, { staticSecret: 'static-token' })).toBe('invalid_static_secret');
    expect(outcome(BODY, signed(), secret, { staticSecret: 'static-token' })).toBe('invalid_static_secret');
    // Without staticSecret the header is ignored: it is not a signature.
    expect(outcome(BODY, { ...signed(), 'X-Webhook-Secret': 'anything' }, secret)).toBe('accepted');
  });

  it('refuses a correctly signed body that is not a Hookline event (invalid_payload)', () => {
    for (const body of ['not json', '[1,2]', 'null', '{"id":"evt_1","event":"x","created_at":"t","test":"no","data":{}}', '{"id":"evt_1","event":"x","created_at":"t","test":true}']) {
      expect({ body, code: outcome(body, standardHeaders([secret], body), secret) }).toEqual({ body, code: 'invalid_payload' });
    }
  });

  it('verifies the exact bytes received: a body that is not valid UTF-8 is checked as sent, not as decoded', () => {
    const bytes = Buffer.concat([Buffer.from('{"id":"evt_1","event":"x","created_at":"t","test":true,"data":{"v":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
    const id = 'dlv_bytes';
    const timestamp = nowSeconds();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const mac = createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), bytes])).digest('base64');
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${mac}` };
    expect(verify(bytes, headers, secret).data).toEqual({ v: '\ufffd\ufffd' });
    expect(outcome(Buffer.from(bytes.toString('utf8')), headers, secret)).toBe('invalid_signature');
  });

  it('refuses a secret that is not a whole whsec_ signing secret, without echoing it (invalid_secret, status 500)', () => {
    const raw = randomBytes(32).toString('base64');
    for (const bad of [raw, 'whsec_', 'whsec_not base64!', `whsec_${raw}x`, 'sk_live_abc']) {
      let error: unknown;
      try {
        createVerifier(bad);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(WebhookVerificationError);
      expect(error).toMatchObject({ code: 'invalid_secret', status: 500 });
      if (bad.length > 8) expect((error as Error).message).not.toContain(bad.slice(6));
    }
    expect(() => createVerifier([])).toThrow(expect.objectContaining({ code: 'invalid_secret' }));
    expect(() => createVerifier([secret, 'nope'])).toThrow(/secret 2 must be/);
  });

  it('refuses bad options and a parsed body with a TypeError (programming errors, not bad requests)', () => {
    expect(() => createVerifier(secret, { tolerance: -1 })).toThrow(TypeError);
    expect(() => createVerifier(secret, { tolerance: Number.NaN })).toThrow(TypeError);
    expect(() => createVerifier(secret, { brand: 'Perfect Parser' })).toThrow(TypeError);
    expect(() => createVerifier(secret, { staticSecret: '' })).toThrow(TypeError);
    expect(() => verify(JSON.parse(BODY) as unknown as string, signed(), secret)).toThrow(/raw body/);
  });

  it('is a typed error: instanceof Error, a name, a code and the status to answer', () => {
    let error: unknown;
    try {
      verify(BODY, {}, secret);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect(error).toMatchObject({ name: 'WebhookVerificationError', code: 'missing_headers', status: 400 });
    expect(Object.entries(VERIFICATION_ERROR_STATUS).filter(([, status]) => status !== 400)).toEqual([['payload_too_large', 413], ['invalid_secret', 500]]);
  });

  it('createVerifier binds the secret and options once and checks many callbacks', () => {
    const check = createVerifier(secret, { tolerance: 60, staticSecret: 's3cret' });
    for (let i = 0; i < 3; i++) expect(check(BODY, { ...standardHeaders([secret], BODY), 'x-webhook-secret': 's3cret' }).test).toBe(false);
    expect(() => check(BODY, { ...standardHeaders([secret], BODY, { timestamp: nowSeconds() - 61 }), 'x-webhook-secret': 's3cret' })).toThrow(expect.objectContaining({ code: 'timestamp_too_old' }));
  });
});
