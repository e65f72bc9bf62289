# An iskdaemon client as Ruby users write it (Debian's ruby-xmlrpc): the write key in
# the URL. Prints one JSON line per check. usage: ruby isk_client.rb URL IMAGE DBID ID
require 'json'
require 'xmlrpc/client'
require 'uri'

url, image, db, id = ARGV[0], ARGV[1], ARGV[2].to_i, ARGV[3].to_i
def check(name, got, want)
  puts JSON.generate({ check: name, ok: got == want, got: got.inspect[0, 200], want: want.inspect[0, 200] })
end

isk = XMLRPC::Client.new2(url)
data = File.binread(image)
check('createDb', isk.call('createDb', db), db)
check('addImgBlob with <base64>', isk.call('addImgBlob', db, id, XMLRPC::Base64.new(data)), 1)
results = isk.call('queryImgBlob', db, XMLRPC::Base64.new(data), 3)
check('queryImgBlob finds it first', results[0][0], id)
check('getDbImgCount', isk.call('getDbImgCount', db), 1)
check('removeImg', isk.call('removeImg', db, id), 1)
check('removeImg of a missing image is 0', isk.call('removeImg', db, id), 0)

u = URI(url)
anonymous = XMLRPC::Client.new3(host: u.host, port: u.port, path: u.path)
begin
  anonymous.call('resetDb', db)
  check('anonymous resetDb refused', 'no fault', 10)
rescue XMLRPC::FaultException => e
  check('anonymous resetDb refused', e.faultCode, 10)
end
