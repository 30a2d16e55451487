import os, struct, glob
B='/tmp/rencgen/blobs'
H='/work/main/tests/fuzz/corpus/header'
BL='/work/main/tests/fuzz/corpus/blob'
def w(d,name,data):
    assert len(data) < 65536
    open(os.path.join(d,name),'wb').write(data)

blobs={os.path.basename(p):open(p,'rb').read() for p in sorted(glob.glob(B+'/*'))}
def hlen(b): return struct.unpack('>H',b[6:8])[0]

def parse(h):
    """-> dict of fields (no validation)"""
    d={}
    d['seg_shift']=h[5]; d['header_len']=hlen(h)
    d['plen']=h[8:16]; d['salt']=h[16:48]; d['np']=h[48:55]; d['flags']=h[55]
    cl=struct.unpack('>H',h[56:58])[0]; ctx=h[58:58+cl]; p=58+cl
    ents=[]; q=0
    while q<len(ctx):
        kl=struct.unpack('>H',ctx[q:q+2])[0]; k=ctx[q+2:q+2+kl]; q+=2+kl
        vl=struct.unpack('>H',ctx[q:q+2])[0]; v=ctx[q+2:q+2+vl]; q+=2+vl
        ents.append((k,v))
    d['ctx']=ents
    n=h[p]; p+=1; slots=[]
    for i in range(n):
        alg=h[p]; rl=struct.unpack('>H',h[p+1:p+3])[0]; ref=h[p+3:p+3+rl]; p+=3+rl
        wl=struct.unpack('>H',h[p:p+2])[0]; wr=h[p+2:p+2+wl]; p+=2+wl
        slots.append((alg,ref,wr))
    d['slots']=slots; d['tag']=h[d['header_len']-32:d['header_len']]
    return d

def ser(d, slot_count=None, pad=None, padbyte=0):
    ctx=b''.join(struct.pack('>H',len(k))+k+struct.pack('>H',len(v))+v for k,v in d['ctx'])
    body=b'RENC'+bytes([1,d['seg_shift']])+b'\0\0'+d['plen']+d['salt']+d['np']+bytes([d['flags']])
    body+=struct.pack('>H',len(ctx))+ctx
    body+=bytes([len(d['slots']) if slot_count is None else slot_count])
    for alg,ref,wr in d['slots']:
        body+=bytes([alg])+struct.pack('>H',len(ref))+ref+struct.pack('>H',len(wr))+wr
    if pad is None: pad=0
    body+=bytes([padbyte])*pad
    hl=len(body)+32
    body=body[:6]+struct.pack('>H',hl)+body[8:]
    return body+d['tag']

# --- header corpus: real headers, then crafted breakages of one of them
for name,b in blobs.items():
    w(H,'real-'+name,b[:hlen(b)])
base=blobs['t100'][:hlen(blobs['t100'])]
d=parse(base)
assert ser(d,pad=len(base)-len(ser(d)))==base, "python serializer disagrees"
def mut(name,fn,src=base):
    x=bytearray(src); fn(x); w(H,'bad-'+name,bytes(x))
mut('magic',lambda x:x.__setitem__(0,ord('X')))
mut('version2',lambda x:x.__setitem__(4,2))
mut('seg-shift-11',lambda x:x.__setitem__(5,11))
mut('seg-shift-25',lambda x:x.__setitem__(5,25))
mut('header-len-95',lambda x:x.__setitem__(slice(6,8),struct.pack('>H',95)))
mut('header-len-past-end',lambda x:x.__setitem__(slice(6,8),struct.pack('>H',len(base)+1)))
mut('flags-2',lambda x:x.__setitem__(55,2))
mut('padding-nonzero',lambda x:x.__setitem__(len(base)-33,1))
mut('ctx-len-huge',lambda x:x.__setitem__(slice(56,58),b'\xff\xff'))
w(H,'bad-prefix-only',base[:16]); w(H,'bad-short-3',base[:3]); w(H,'bad-short-15',base[:15])
w(H,'bad-cut-before-tag',base[:-1])
import copy
def variant(name,f,**kw):
    e=copy.deepcopy(d); f(e); w(H,name,ser(e,**kw))
variant('ok-no-padding',lambda e:None)
variant('ok-plen-unknown',lambda e:e.__setitem__('plen',b'\xff'*8),pad=7)
variant('ok-compressed-shift24',lambda e:(e.__setitem__('flags',1),e.__setitem__('seg_shift',24)))
variant('ok-ctx-unknown-keys',lambda e:e.__setitem__('ctx',sorted(e['ctx']+[(b'',b''),(b'zz-extra',b'\xe2\x82\xac')])))
variant('ok-slot-alg4-rsa-sized',lambda e:e.__setitem__('slots',[(4,b'akv:https://v.vault.azure.net/keys/k/abc',bytes(40)),(3,b'pkcs11:object=k',bytes(256))]))
variant('bad-ctx-unsorted',lambda e:e.__setitem__('ctx',list(reversed(e['ctx']))))
variant('bad-ctx-dup',lambda e:e.__setitem__('ctx',sorted(e['ctx']+[(b'env',b'x')])))
variant('bad-ctx-no-env',lambda e:e.__setitem__('ctx',[c for c in e['ctx'] if c[0]!=b'env']))
variant('bad-ctx-bad-utf8',lambda e:e.__setitem__('ctx',sorted(e['ctx']+[(b'note',b'\xc0\xaf')])))
variant('bad-ctx-surrogate',lambda e:e.__setitem__('ctx',sorted(e['ctx']+[(b'note',b'\xed\xa0\x80')])))
variant('bad-ctx-nul',lambda e:e.__setitem__('ctx',sorted(e['ctx']+[(b'note',b'a\0b')])))
variant('bad-slot-count-0',lambda e:None,slot_count=0,pad=60)
variant('bad-slot-count-9',lambda e:e.__setitem__('slots',e['slots']*9))
variant('bad-slot-count-more-than-present',lambda e:None,slot_count=2,pad=3)
variant('bad-alg-0',lambda e:e.__setitem__('slots',[(0,)+e['slots'][0][1:]]))
variant('bad-alg-5',lambda e:e.__setitem__('slots',[(5,)+e['slots'][0][1:]]))
variant('bad-ref-empty',lambda e:e.__setitem__('slots',[(1,b'',bytes(40))]))
variant('bad-ref-too-long',lambda e:e.__setitem__('slots',[(1,b'local:'+b'a'*2043,bytes(40))]))
variant('ok-ref-max-len',lambda e:e.__setitem__('slots',[(1,b'local:'+b'a'*2042,bytes(40))]))
variant('bad-wlen-0',lambda e:e.__setitem__('slots',[(1,b'local:x/1',b'')]))

# --- blob corpus: mode byte 0 (as is) for every real blob, 1 (re-tag) for edits
for name,b in blobs.items():
    w(BL,'real-'+name,b'\0'+b)
def blob_mut(name,mode,src,fn):
    x=bytearray(src); fn(x); w(BL,name,bytes([mode])+bytes(x))
t8=blobs['t8192']; hl8=hlen(t8)
z=blobs['t10000-zstd']; hlz=hlen(z)
s6=blobs['stdin-r6000']
blob_mut('trunc-last-record',0,t8,lambda x:x.__delitem__(slice(len(x)-5,None)))
blob_mut('trunc-after-first-record',0,t8,lambda x:x.__delitem__(slice(hl8+4+4096+16,None)))
blob_mut('trailing-byte',0,t8,lambda x:x.append(0))
blob_mut('trailing-record-word',0,t8,lambda x:x.extend(b'\0\0\0\0'))
blob_mut('flipped-tag',0,t8,lambda x:x.__setitem__(hl8-1,x[hl8-1]^1))
wpos=hl8-32-(hl8-32-len(ser(parse(t8[:hl8]))[:-32]))-20
blob_mut('flipped-wrapped-dek',0,t8,lambda x:x.__setitem__(wpos,x[wpos]^1))
blob_mut('flipped-record-byte',0,t8,lambda x:x.__setitem__(hl8+100,x[hl8+100]^0x80))
blob_mut('swapped-records',0,t8,lambda x:x.__setitem__(slice(hl8,None),x[hl8+4116:]+x[hl8:hl8+4116]))
blob_mut('header-only',0,t8,lambda x:x.__delitem__(slice(hl8,None)))
# re-tagged header edits: reach the record reader with a lying header
def set_plen(v): return lambda x:x.__setitem__(slice(8,16),struct.pack('>Q',v))
blob_mut('retag-plen-plus1',1,t8,set_plen(8193))
blob_mut('retag-plen-minus1',1,t8,set_plen(8191))
blob_mut('retag-plen-4096',1,t8,set_plen(4096))
blob_mut('retag-plen-unknown',1,t8,set_plen(2**64-1))
blob_mut('retag-plen-huge',1,t8,set_plen(2**63))
blob_mut('retag-plen-known-stdin',1,s6,set_plen(6000))
blob_mut('retag-plen-wrong-stdin',1,s6,set_plen(4096))
blob_mut('retag-flags-cleared-zstd',1,z,lambda x:x.__setitem__(55,0))
blob_mut('retag-flags-set-raw',1,t8,lambda x:x.__setitem__(55,1))
blob_mut('retag-shift-13',1,t8,lambda x:x.__setitem__(5,13))
blob_mut('retag-nonce-prefix',1,t8,lambda x:x.__setitem__(48,x[48]^1))
blob_mut('retag-as-is',1,t8,lambda x:None)
blob_mut('retag-zstd-as-is',1,z,lambda x:None)
blob_mut('not-renc',0,b'hello world, not a blob',lambda x:None)
w(BL,'empty-input',b'')
w(BL,'mode-only',b'\1')
